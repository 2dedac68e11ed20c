package importers

import (
	"fmt"
	"sort"

	"github.com/ovfmount/ovfmount/appliance"
)

// Finding is one rule a package breaks, for one target.
type Finding struct {
	Target   Target   `json:"target"`
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	// Subject is the member or descriptor element concerned ("disk1.vmdk",
	// "File file1", "Envelope").
	Subject string `json:"subject"`
	Message string `json:"message"`
	// Fix says in one line how to make the package acceptable.
	Fix    string `json:"fix"`
	Source string `json:"source"`
}

// Options tune a check.
type Options struct {
	// Targets are the importers to check against; nil means all.
	Targets []Target
	// VSphereVersion is the vSphere (ESXi) release the package must deploy
	// on, "7.0U2" or "8.0" say: a hardware version newer than it knows is
	// then a failure. Empty: every vmx-NN is a warning naming the oldest
	// release that runs it.
	VSphereVersion string
}

// breach is one thing a rule found wrong, before it is told per target.
// only, when set, limits it to some of the rule's targets; sev, when set,
// replaces the rule's severity (a hardware version is only a warning
// without a vSphere release to compare with).
type breach struct {
	rule    string
	subject string
	message string
	fix     string
	only    []Target
	sev     Severity
	source  string // replaces the rule's source, with sev, for a case the rule's own source does not cover
}

// checker accumulates breaches.
type checker struct {
	p    *appliance.Package
	opts Options
	out  []breach
}

func (c *checker) add(b breach) { c.out = append(c.out, b) }

// Check checks the package against every selected target and returns the
// findings, grouped by target (in Targets order), then by rule and
// subject. No finding for a target means it should import the package.
func Check(p *appliance.Package, opts Options) []Finding {
	c := &checker{p: p, opts: opts}
	c.container()
	c.order()
	c.tar()
	c.descriptor()
	c.manifest()
	c.cert()
	c.references()
	c.disks()
	c.out = capBreaches(c.out)
	want := map[Target]bool{}
	for _, t := range opts.Targets {
		want[t] = true
	}
	var out []Finding
	for _, b := range c.out {
		r, ok := RuleByID(b.rule)
		if !ok {
			continue // cannot happen: every breach names a rule of the table, as the tests check
		}
		for t, v := range r.Targets {
			if len(want) > 0 && !want[t] || len(b.only) > 0 && !contains(b.only, t) {
				continue
			}
			sev := v.Severity
			if b.sev != "" {
				sev = b.sev
			}
			src := v.Source
			if b.source != "" {
				src = b.source
			}
			out = append(out, Finding{Target: t, Rule: b.rule, Severity: sev, Subject: b.subject, Message: b.message, Fix: b.fix, Source: src})
		}
	}
	order := map[Target]int{}
	for i, t := range Targets {
		order[t] = i
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Target != b.Target {
			return order[a.Target] < order[b.Target]
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		if (a.Subject == "(more)") != (b.Subject == "(more)") {
			return b.Subject == "(more)" // the summary closes its rule
		}
		return a.Subject < b.Subject
	})
	return out
}

// maxPerRule bounds the breaches one rule reports: an archive of a
// hundred thousand pax members, or a descriptor referencing as many
// absent files, is told in a screenful.
const maxPerRule = 20

// capBreaches keeps the first maxPerRule breaches of each rule and sums
// up the rest in one.
func capBreaches(bs []breach) []breach {
	count := map[string]int{}
	var out []breach
	last := map[string]breach{}
	for _, b := range bs {
		count[b.rule]++
		if count[b.rule] <= maxPerRule {
			out = append(out, b)
		}
		last[b.rule] = b
	}
	for _, r := range Rules {
		if n := count[r.ID]; n > maxPerRule {
			b := last[r.ID]
			b.subject = "(more)"
			b.message = fmt.Sprintf("%d more breaches of this rule, not listed", n-maxPerRule)
			out = append(out, b)
		}
	}
	return out
}

// Failed reports whether any finding fails its target.
func Failed(fs []Finding) bool {
	for _, f := range fs {
		if f.Severity == Fail {
			return true
		}
	}
	return false
}

func contains(ts []Target, t Target) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}
