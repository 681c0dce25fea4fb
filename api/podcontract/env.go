package podcontract

// The environment variables the operator sets on the extractor container of
// every attempt. The keys of the job's source.secretRef come beside them.
const (
	// EnvFormat holds the job's spec.format: pdf, dxf, ifc, step or werk24.
	EnvFormat = "EXTRACTION_FORMAT"
	// EnvSourceURL holds the job's spec.source.url.
	EnvSourceURL = "EXTRACTION_SOURCE_URL"
	// EnvOptions holds the job's spec.options as a JSON object of strings;
	// "{}" when the job has none.
	EnvOptions = "EXTRACTION_OPTIONS"
	// EnvAttempt holds the attempt's number, 1 for the first.
	EnvAttempt = "EXTRACTION_ATTEMPT"
)

// EnvAllowedDestinations is the administrator's allow-list of internal
// destinations an extractor may connect to, such as an object store inside
// the cluster: a comma-separated list of IP networks ("10.20.0.0/16",
// "fd00:1::/64"), IP addresses ("10.20.0.5") and host names
// ("minio.storage.svc.cluster.local", matched exactly and without regard to
// case). It comes only from the ExtractorClass's env, where an administrator
// sets it (a value or a ConfigMap key); the operator sets it empty when the
// class does not, so that a key of the job's source.secretRef, which the job's
// author writes, cannot set it. Unset or empty allows no internal
// destination. Its name does not start with EXTRACTION_, since class env
// names may not.
const EnvAllowedDestinations = "EXTRACTOR_ALLOWED_DESTINATIONS"

// AdminEnv lists the variables an attempt's environment takes only from the
// ExtractorClass, never from the job's source.secretRef.
func AdminEnv() []string { return []string{EnvAllowedDestinations} }

// TerminationLogPath is where the kubelet reads the termination message
// unless the container names another path.
const TerminationLogPath = "/dev/termination-log"
