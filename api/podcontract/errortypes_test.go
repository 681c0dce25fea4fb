package podcontract

import (
	"slices"
	"strings"
	"testing"
)

func TestClassOf(t *testing.T) {
	cases := []struct {
		name      string
		errorType string
		want      Class
	}{
		{"a connection error is retryable", "ConnectionError", Retryable},
		{"a corrupted file is permanent", "CorruptedFile", Permanent},
		{"a refused destination is permanent", DestinationNotAllowed, Permanent},
		{"matching is a case-insensitive substring", "s3connectionerror", Retryable},
		{"a longer error type containing a permanent one is permanent", "PdfCorruptedFileError", Permanent},
		{"retryable entries are checked before permanent ones", "TimeoutErrorPermissionDenied", Retryable},
		{"an unknown error type is retryable", "QuotaWobble", Retryable},
		{"an empty error type is unknown, so retryable", "", Retryable},
		{"the reference extractor's own types are unknown, so retryable", SourceNotFound, Retryable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ClassOf(tc.errorType); got != tc.want {
				t.Errorf("ClassOf(%q) = %s, want %s", tc.errorType, got, tc.want)
			}
		})
	}
}

func TestBuiltinErrorTypesListTheRetryableFirst(t *testing.T) {
	builtin := BuiltinErrorTypes()
	firstPermanent := slices.IndexFunc(builtin, func(e string) bool { return ClassOf(e) == Permanent })
	if firstPermanent < 1 {
		t.Fatalf("%v starts with a permanent type or has none", builtin)
	}
	for i, errorType := range builtin {
		if want := map[bool]Class{true: Retryable, false: Permanent}[i < firstPermanent]; ClassOf(errorType) != want {
			t.Errorf("%s at %d is %s, want %s", errorType, i, ClassOf(errorType), want)
		}
		if !slices.Contains(ErrorTypes(), errorType) {
			t.Errorf("ErrorTypes() lacks %s", errorType)
		}
	}
}

func TestErrorTypeMatches(t *testing.T) {
	cases := []struct {
		name      string
		errorType string
		patterns  []string
		want      bool
	}{
		{"a pattern inside the type matches", "S3ConnectionError", []string{"Connection"}, true},
		{"case does not count", "corruptedfile", []string{"CorruptedFILE"}, true},
		{"one matching pattern of several is enough", "TimeoutError", []string{"x", "timeout"}, true},
		{"an empty pattern matches nothing", "TimeoutError", []string{""}, false},
		{"no patterns match nothing", "TimeoutError", nil, false},
		{"a type shorter than the pattern does not match", "Time", []string{"Timeout"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ErrorTypeMatches(tc.errorType, tc.patterns...); got != tc.want {
				t.Errorf("ErrorTypeMatches(%q, %q) = %v, want %v", tc.errorType, tc.patterns, got, tc.want)
			}
		})
	}
}

func TestValidErrorType(t *testing.T) {
	cases := []struct {
		name      string
		errorType string
		want      bool
	}{
		{"a CamelCase name is valid", "ConnectionError", true},
		{"digits and underscores may follow the first letter", "S3_Error2", true},
		{"one letter is valid", "E", true},
		{"64 characters are valid", "A" + strings.Repeat("b", 63), true},
		{"65 characters are not", "A" + strings.Repeat("b", 64), false},
		{"an empty type is not", "", false},
		{"a leading digit is not", "3Error", false},
		{"a space is not", "Bad Type", false},
		{"a colon is not", "Error:", false},
		{"a letter outside ASCII is not", "Érreur", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidErrorType(tc.errorType); got != tc.want {
				t.Errorf("ValidErrorType(%q) = %v, want %v", tc.errorType, got, tc.want)
			}
		})
	}
	for _, errorType := range ErrorTypes() {
		if !ValidErrorType(errorType) {
			t.Errorf("the package's own %q is not valid", errorType)
		}
	}
}
