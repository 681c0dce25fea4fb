package podcontract

// Exit codes of sysexits.h that the contract uses.
const (
	exitUsage       = 64 // EX_USAGE
	exitDataErr     = 65 // EX_DATAERR
	exitNoInput     = 66 // EX_NOINPUT
	exitNoHost      = 68 // EX_NOHOST
	exitUnavailable = 69 // EX_UNAVAILABLE
	exitSoftware    = 70 // EX_SOFTWARE
	exitIOErr       = 74 // EX_IOERR
	exitTempFail    = 75 // EX_TEMPFAIL
	exitProtocol    = 76 // EX_PROTOCOL
	exitNoPerm      = 77 // EX_NOPERM
)

// exitCodes gives every error type this package names one exit code, chosen
// so that the operator's reading of the code alone (errorTypesOfExitCodes)
// gives the type's own class: the class survives when the termination
// message is lost.
var exitCodes = map[string]int{
	UsageError:            exitUsage,
	UnsupportedFormat:     exitDataErr,
	InvalidFileType:       exitDataErr,
	CorruptedFile:         exitDataErr,
	FileTooLarge:          exitDataErr,
	SourceNotFound:        exitNoInput,
	ServiceUnavailable:    exitUnavailable,
	InternalError:         exitSoftware,
	IOError:               exitIOErr,
	ConnectionError:       exitTempFail,
	S3ConnectionError:     exitTempFail,
	TimeoutError:          exitTempFail,
	Werk24Timeout:         exitTempFail,
	RateLimitExceeded:     exitTempFail,
	TemporaryFailure:      exitTempFail,
	Interrupted:           exitTempFail,
	UnexpectedResponse:    exitProtocol,
	AuthenticationFailed:  exitNoPerm,
	PermissionDenied:      exitNoPerm,
	DestinationNotAllowed: exitNoPerm,
}

// errorTypesOfExitCodes reads an exit code without an error type as
// sysexits.h does.
var errorTypesOfExitCodes = map[int]string{
	exitDataErr:     CorruptedFile,
	exitNoHost:      ConnectionError,
	exitUnavailable: ServiceUnavailable,
	exitTempFail:    TemporaryFailure,
	exitNoPerm:      PermissionDenied,
}

// ExitCode is the exit code an extractor exits with on a failure of
// errorType. The error types this package names have their own (see the
// package documentation); any other gets 65 (EX_DATAERR) if its class is
// Permanent and 70 (EX_SOFTWARE) if it is Retryable, so that the code alone
// still gives the type's class.
func ExitCode(errorType string) int {
	if code, ok := exitCodes[errorType]; ok {
		return code
	}
	if ClassOf(errorType) == Permanent {
		return exitDataErr
	}
	return exitSoftware
}

// ErrorTypeOfExitCode is the error type the operator reads from an exit code
// when the termination message has none: 65 CorruptedFile, 68
// ConnectionError, 69 ServiceUnavailable, 75 TemporaryFailure, 77
// PermissionDenied. For any other code ok is false and the error type is
// unknown, which is retryable.
func ErrorTypeOfExitCode(code int) (errorType string, ok bool) {
	errorType, ok = errorTypesOfExitCodes[code]
	return errorType, ok
}
