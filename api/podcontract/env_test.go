package podcontract

import (
	"strings"
	"testing"
)

// An ExtractorClass's env may not name EXTRACTION_ variables (they are the
// operator's), so a variable the class must be able to set cannot be one.
func TestTheAdministratorsVariablesCanBeSetByAClass(t *testing.T) {
	for _, name := range AdminEnv() {
		if strings.HasPrefix(name, "EXTRACTION_") {
			t.Errorf("%s starts with EXTRACTION_, which a class's env may not set", name)
		}
	}
}
