package v1alpha1

// Condition types and reasons of ExtractorClasses' status, besides the
// kstatus set in reasons.go.
const (
	// ConditionCompetingDefaults is True on a default class while another
	// default class serves one of its formats in a namespace that both admit;
	// jobs that name no class get the oldest of them, then by name.
	ConditionCompetingDefaults = "CompetingDefaults"
	// ReasonAccepted says a class is ready for the jobs that use it.
	ReasonAccepted = "Accepted"
	// ReasonInvalidNamespaceSelector says a class's namespaceSelector does not
	// parse, so that no namespace's jobs may use the class.
	ReasonInvalidNamespaceSelector = "InvalidNamespaceSelector"
)
