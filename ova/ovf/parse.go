package ovf

import (
	"fmt"
	"io"
)

// maxWarnings bounds the warning list: a hostile descriptor can make every
// element a finding, and a few hundred say everything a reader needs.
const maxWarnings = 200

// MaxSize is the largest descriptor Parse reads: real ones are kilobytes,
// and a larger one fails with ErrTooLarge.
const MaxSize = 16 << 20

// Parse reads one descriptor. It fails only on input that is not an OVF
// envelope at all (not XML, no Envelope root) or that breaks a safety bound
// (ErrTooLarge, ErrTooDeep, ErrEntity); everything a lenient reader
// tolerates is parsed, and each tolerated deviation is a Warning.
func Parse(r io.Reader) (*Envelope, error) {
	return parse(r, defaultLimits)
}

// maxSizingWork bounds the item visits spent on per-option CPUs and memory
// for a whole descriptor: real ones need a few thousand (a dozen options
// over a hundred items), and this much takes well under a second.
const maxSizingWork = 1 << 24

func parse(r io.Reader, lim limits) (*Envelope, error) {
	p := &parser{sizingBudget: maxSizingWork}
	root, err := readTree(r, lim, p)
	if err != nil {
		return nil, err
	}
	p.envelope(root)
	p.finish()
	return &p.env, nil
}

// parser holds the envelope being built and what later stages need to
// cross-check it.
type parser struct {
	env     Envelope
	utf16   bool // the input was transcoded from UTF-16
	dropped int  // warnings beyond maxWarnings

	configs map[string]bool // declared deployment configuration ids
	props   []Property      // every property, for ${name} capacities
	refs    []hostRef       // HostResource references to check once all disks are known
	nicNets []nicNet        // NIC connections to check once all networks are known

	sizingBudget int // item visits left for per-option sizes (maxSizingWork)
}

// hostRef is one resolved HostResource, kept to be checked at the end.
type hostRef struct {
	system, item string
	kind, id     string
}

type nicNet struct {
	system, item, network string
}

func (p *parser) warnf(format string, args ...any) {
	if len(p.env.Warnings) >= maxWarnings {
		p.dropped++
		return
	}
	p.env.Warnings = append(p.env.Warnings, fmt.Sprintf(format, args...))
}

// envelope reads the sections in an order that lets later ones use earlier
// ones: files, disks, networks and deployment options first, wherever they
// appear, then the systems.
func (p *parser) envelope(root *node) {
	p.version(root)
	p.configs = map[string]bool{}
	p.deploymentOptions(root)
	for _, k := range root.kids {
		if k.vendor {
			continue
		}
		switch k.kind {
		case "References":
			p.references(k)
		case "DiskSection":
			p.disks(k)
		case "NetworkSection":
			p.networks(k)
		}
	}
	// XenCenter writes a vApp's StartupSection in the Envelope, beside
	// the VirtualSystemCollection it orders.
	startup := root.child("StartupSection")
	systems := 0
	for _, k := range root.kids {
		if !k.vendor && (k.kind == "VirtualSystem" || k.kind == "VirtualSystemCollection") {
			p.content(k, nil, startup)
			systems++
		}
	}
	if systems == 0 {
		p.warnf("Envelope has no VirtualSystem or VirtualSystemCollection")
	} else if systems > 1 {
		p.warnf("Envelope has %d top-level VirtualSystem/VirtualSystemCollection elements; DSP0243 allows one", systems)
	}
}

// finish cross-checks what only the whole envelope shows and makes the
// lists JSON arrays rather than null.
func (p *parser) finish() {
	p.resolveDisks()
	p.checkRefs()
	p.checkSystems()
	e := &p.env
	if e.Files == nil {
		e.Files = []File{}
	}
	if e.Disks == nil {
		e.Disks = []Disk{}
	}
	if e.Networks == nil {
		e.Networks = []Network{}
	}
	if e.Systems == nil {
		e.Systems = []VirtualSystem{}
	}
	for i := range e.Collections {
		if e.Collections[i].Members == nil {
			e.Collections[i].Members = []string{}
		}
	}
	for i := range e.Systems {
		if e.Systems[i].Disks == nil {
			e.Systems[i].Disks = []Attachment{}
		}
		if e.Systems[i].NICs == nil {
			e.Systems[i].NICs = []NIC{}
		}
	}
	if p.dropped > 0 {
		e.Warnings = append(e.Warnings, fmt.Sprintf("%d more warnings not shown", p.dropped))
	}
	if e.Warnings == nil {
		e.Warnings = []string{}
	}
}
