package importers_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/importers"
	"github.com/ovfmount/ovfmount/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the rule table of docs/importers.md from the rules")

const (
	tableBegin = "<!-- rules:begin (generated from importers.Rules: go test ./importers -run TestDocTable -update) -->"
	tableEnd   = "<!-- rules:end -->"
)

// ruleTable renders the rules as docs/importers.md shows them.
func ruleTable() string {
	var b strings.Builder
	b.WriteString("| Rule | What it checks | Targets: severity and source |\n|---|---|---|\n")
	for _, r := range importers.Rules {
		var cells []string
		for _, t := range importers.Targets {
			if v, ok := r.Targets[t]; ok {
				cells = append(cells, fmt.Sprintf("**%s** %s: %s", t, v.Severity, strings.ReplaceAll(v.Source, "|", "\\|")))
			}
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", r.ID, r.What, strings.Join(cells, "<br>"))
	}
	return b.String()
}

// TestDocTable: docs/importers.md lists exactly the rules of the code,
// with the same ids, targets, severities and sources.
func TestDocTable(t *testing.T) {
	path := filepath.Join(testutil.RepoRoot(t), "docs", "importers.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	i, j := strings.Index(s, tableBegin), strings.Index(s, tableEnd)
	if i < 0 || j < i {
		t.Fatalf("%s: no rule table markers", path)
	}
	want := ruleTable()
	got := s[i+len(tableBegin)+1 : j]
	if got == want {
		return
	}
	if *update {
		os.WriteFile(path, []byte(s[:i+len(tableBegin)+1]+want+s[j:]), 0o644)
		return
	}
	t.Errorf("docs/importers.md's rule table differs from importers.Rules; run go test ./importers -run TestDocTable -update")
}

// TestRuleTable: every rule names at least one target, each with a
// source, and every id is unique.
func TestRuleTable(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range importers.Rules {
		if seen[r.ID] {
			t.Errorf("rule %s twice", r.ID)
		}
		seen[r.ID] = true
		if len(r.Targets) == 0 || r.What == "" {
			t.Errorf("rule %s has no target or no description", r.ID)
		}
		for tg, v := range r.Targets {
			if v.Source == "" || (v.Severity != importers.Fail && v.Severity != importers.Warn) {
				t.Errorf("rule %s, target %s: %+v", r.ID, tg, v)
			}
		}
	}
}
