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

// TerminationLogPath is where the kubelet reads the termination message
// unless the container names another path.
const TerminationLogPath = "/dev/termination-log"
