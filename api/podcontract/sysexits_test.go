package podcontract

import "testing"

func TestErrorTypeOfExitCode(t *testing.T) {
	cases := []struct {
		name          string
		code          int
		wantErrorType string
		wantOK        bool
	}{
		{"65 EX_DATAERR is CorruptedFile", 65, CorruptedFile, true},
		{"68 EX_NOHOST is ConnectionError", 68, ConnectionError, true},
		{"69 EX_UNAVAILABLE is ServiceUnavailable", 69, ServiceUnavailable, true},
		{"75 EX_TEMPFAIL is TemporaryFailure", 75, TemporaryFailure, true},
		{"77 EX_NOPERM is PermissionDenied", 77, PermissionDenied, true},
		{"1 is unknown", 1, "", false},
		{"64 EX_USAGE is unknown", 64, "", false},
		{"137, a SIGKILL, is unknown", 137, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errorType, ok := ErrorTypeOfExitCode(tc.code)
			if errorType != tc.wantErrorType || ok != tc.wantOK {
				t.Errorf("ErrorTypeOfExitCode(%d) = (%q, %v), want (%q, %v)", tc.code, errorType, ok, tc.wantErrorType, tc.wantOK)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	cases := []struct {
		name      string
		errorType string
		want      int
	}{
		{"a usage error is EX_USAGE", UsageError, 64},
		{"a corrupted file is EX_DATAERR", CorruptedFile, 65},
		{"a missing source is EX_NOINPUT", SourceNotFound, 66},
		{"an unavailable service is EX_UNAVAILABLE", ServiceUnavailable, 69},
		{"an internal error is EX_SOFTWARE", InternalError, 70},
		{"a connection error is EX_TEMPFAIL", ConnectionError, 75},
		{"an unexpected response is EX_PROTOCOL", UnexpectedResponse, 76},
		{"a permission denied is EX_NOPERM", PermissionDenied, 77},
		{"a refused destination is EX_NOPERM", DestinationNotAllowed, 77},
		{"an unnamed permanent type is EX_DATAERR", "PdfCorruptedFileError", 65},
		{"an unnamed retryable type is EX_SOFTWARE", "QuotaWobble", 70},
		{"names are exact: a differently cased type falls back on its class", "connectionerror", 70},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ExitCode(tc.errorType); got != tc.want {
				t.Errorf("ExitCode(%q) = %d, want %d", tc.errorType, got, tc.want)
			}
		})
	}
}

// classOfExitCode is how the operator classifies an exit code alone.
func classOfExitCode(code int) Class {
	errorType, _ := ErrorTypeOfExitCode(code)
	return ClassOf(errorType)
}

func TestAnExitCodeAloneGivesTheClassOfItsErrorType(t *testing.T) {
	for _, errorType := range append(ErrorTypes(), "PdfCorruptedFileError", "QuotaWobble", "FileTooLargeForS3TimeoutError") {
		code := ExitCode(errorType)
		if code < 64 || code > 78 {
			t.Errorf("%s exits %d, outside sysexits.h", errorType, code)
		}
		if got, want := classOfExitCode(code), ClassOf(errorType); got != want {
			t.Errorf("%s exits %d, which the operator reads as %s, not %s", errorType, code, got, want)
		}
	}
}
