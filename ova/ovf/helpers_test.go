package ovf

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func boolStr(b bool) string { return strconv.FormatBool(b) }

// mustParse parses a descriptor given as a string and fails on error.
func mustParse(t *testing.T, doc string) *Envelope {
	t.Helper()
	e, err := Parse(strings.NewReader(doc))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return e
}
