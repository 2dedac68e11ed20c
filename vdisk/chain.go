package vdisk

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// MaxChainDepth bounds the layers of a chain, the leaf's included. qemu
// has no limit but its stack; snapshot trees seldom pass a few dozen
// layers, and a bound keeps a hostile chain of ever new names finite.
const MaxChainDepth = 256

// ErrParent: a child image's parent is not in the package, is not the
// image the child was written against, or makes a loop or a chain deeper
// than MaxChainDepth. The error names the child, the parent it wanted and
// why.
var ErrParent = errors.New("no usable parent image")

// Source is a file that may be a child's parent: one of the package's own
// files, never a host path.
type Source struct {
	// Name is the file's path in the package, for errors, loops and map.
	Name string
	R    io.ReaderAt
	Size int64
	// Resolve finds the extents a VMDK descriptor names, as
	// Options.Resolve does for the leaf.
	Resolve func(name string) (io.ReaderAt, int64, error)
}

// Layer is one image of a chain.
type Layer struct {
	Name   string // the file's path in the package
	Format string
}

// chain is the view of a leaf read through its parents: a layer's Hole
// runs are the next layer's bytes, up to the end of that layer (past it,
// zeros, as qemu reads past a short backing file).
type chain struct {
	layers []formatMapper
	names  []string
	size   int64
}

func (c *chain) Size() int64    { return c.size }
func (c *chain) Format() string { return c.layers[0].Format() }

// Warnings are every layer's, a parent's named.
func (c *chain) Warnings() []string {
	var out []string
	for i, l := range c.layers {
		for _, w := range l.Warnings() {
			if i > 0 {
				w = c.names[i] + " (parent): " + w
			}
			out = append(out, w)
		}
	}
	return out
}

func (c *chain) Map(off int64) (blockmap.Run, error) {
	r, _, err := c.mapLayer(off)
	return r, err
}

// mapLayer is Map, and the depth of the layer that supplies the run: 0
// for the leaf. A run no layer holds is a Hole of the deepest layer that
// reaches off, as qemu-img map reports it.
func (c *chain) mapLayer(off int64) (blockmap.Run, int, error) {
	hi := c.size
	last := len(c.layers) - 1
	for d := 0; ; d++ {
		l := c.layers[d]
		if off >= l.Size() {
			return blockmap.Run{Off: off, Len: hi - off, Kind: blockmap.Hole}, max(d-1, 0), nil
		}
		r, err := l.Map(off)
		if err != nil {
			if d > 0 {
				err = fmt.Errorf("parent %s: %w", c.names[d], err)
			}
			return blockmap.Run{}, d, err
		}
		if r.Len <= 0 || r.Off > off || r.End() <= off {
			return blockmap.Run{}, d, fmt.Errorf("%s: the map gave bytes %d+%d for offset %d: %w", c.names[d], r.Off, r.Len, off, ErrCorrupt)
		}
		if d > 0 && r.Off < off {
			// A parent's run may begin before the child's hole: only
			// the part from off on is the parent's to give.
			if r.Kind == blockmap.Stored {
				r.Phys += off - r.Off
			}
			r.Len -= off - r.Off
			r.Off = off
		}
		if r.End() > hi {
			r.Len = hi - r.Off
		}
		if r.Kind != blockmap.Hole || d == last {
			return r, d, nil
		}
		hi = r.End()
	}
}

// openChain opens the parents of leaf, nearest first, and returns the
// chain, or leaf itself when it has no parent.
func openChain(leaf formatMapper, opts Options) (formatMapper, error) {
	c := &chain{layers: []formatMapper{leaf}, names: []string{opts.Name}, size: leaf.Size()}
	seen := map[string]bool{opts.Name: true}
	for {
		top := c.layers[len(c.layers)-1]
		ch, ok := top.(blockmap.Child)
		if !ok {
			break
		}
		ref := ch.Parent()
		if ref == nil {
			break
		}
		child := c.names[len(c.names)-1]
		if len(c.layers) >= MaxChainDepth {
			return nil, fmt.Errorf("vdisk: %s: the chain is deeper than %d images at %s: %w", opts.Name, MaxChainDepth, child, ErrParent)
		}
		p, name, err := findParent(child, ref, seen, opts)
		if err != nil {
			return nil, fmt.Errorf("vdisk: %s: %w", opts.Name, err)
		}
		seen[name] = true
		c.layers = append(c.layers, p)
		c.names = append(c.names, name)
	}
	if len(c.layers) == 1 {
		return leaf, nil
	}
	return c, nil
}

// findParent opens the candidates the package offers for ref and returns
// the first the child accepts.
func findParent(child string, ref *blockmap.Parent, seen map[string]bool, opts Options) (formatMapper, string, error) {
	wanted := describeRef(ref)
	srcs, err := opts.Parents(child, ref)
	if err != nil {
		return nil, "", fmt.Errorf("%s wants the parent %s: %w: %w", child, wanted, ErrParent, err)
	}
	var why []string
	for _, s := range srcs {
		m, err := openParent(s, ref, opts)
		if err != nil {
			why = append(why, fmt.Sprintf("%s: %v", s.Name, err))
			continue
		}
		if ref.Format != "" && !sameFormat(ref.Format, m.Format()) {
			why = append(why, fmt.Sprintf("%s is %s, not %s as the child says", s.Name, m.Format(), ref.Format))
			continue
		}
		if ref.Check != nil {
			if err := ref.Check(m); err != nil {
				why = append(why, fmt.Sprintf("%s: %v", s.Name, err))
				continue
			}
		}
		// Only a candidate the child accepts makes a loop: a child that
		// names its parent by identity alone (VDI) is offered every
		// disk, its own descendants too.
		if seen[s.Name] {
			return nil, "", fmt.Errorf("%s wants the parent %s, which is %s, already in the chain (a loop): %w", child, wanted, s.Name, ErrParent)
		}
		return m, s.Name, nil
	}
	if len(srcs) == 0 {
		return nil, "", fmt.Errorf("%s wants the parent %s, which is not in the package: %w", child, wanted, ErrParent)
	}
	return nil, "", fmt.Errorf("%s wants the parent %s, and no file of the package is it (%s): %w", child, wanted, strings.Join(why, "; "), ErrParent)
}

// openParent opens a candidate as the format the child names: raw when it
// says raw (qemu then probes nothing), else by its magic, and as raw when
// none matches and the child names no format, as qemu falls back to raw
// for a backing file it cannot probe.
func openParent(s Source, ref *blockmap.Parent, opts Options) (formatMapper, error) {
	if strings.EqualFold(ref.Format, "raw") {
		return newRawMapper(s.R, s.Size), nil
	}
	return openMapper(s.R, s.Size, Options{Name: s.Name, Resolve: s.Resolve, Parents: opts.Parents, Raw: ref.Format == ""})
}

// sameFormat compares a format a child names (QCOW2 backing_fmt: "raw",
// "vmdk", "qcow2", ...) with an opened image's description.
func sameFormat(named, format string) bool {
	named = strings.ToLower(named)
	f, _, _ := strings.Cut(format, " ")
	return f == named || named == "vpc" && f == "vhd"
}

func describeRef(ref *blockmap.Parent) string {
	if len(ref.Names) == 0 {
		return "(named by its identity only)"
	}
	q := make([]string, len(ref.Names))
	for i, n := range ref.Names {
		q[i] = blockmap.Quote(n)
	}
	return strings.Join(q, " or ")
}

// Provenance says where a run of a view's bytes comes from, as qemu-img
// map tells it.
type Provenance struct {
	Off, Len int64
	// Kind is Hole (no layer holds it: zeros), Zero (a layer says zeros),
	// Stored or Compressed.
	Kind blockmap.Kind
	// Depth is the layer that supplies the run, 0 for the leaf; for a
	// Hole, the deepest layer that reaches it, as qemu-img map reports.
	Depth int
	// Phys is where a Stored run starts in its layer's file (in the
	// extent file, for a VMDK whose descriptor names extents, as qemu
	// gives it); -1 for other kinds.
	Phys int64
}

// Layers lists the images the view reads, the leaf first, then its
// parents nearest first.
func (im *image) Layers() []Layer {
	if c, ok := im.m.(*chain); ok {
		out := make([]Layer, len(c.layers))
		for i, l := range c.layers {
			out[i] = Layer{Name: c.names[i], Format: l.Format()}
		}
		return out
	}
	return []Layer{{Name: im.name, Format: im.m.Format()}}
}

// Provenance returns the run that holds off, and the layer it comes from.
func (im *image) Provenance(off int64) (Provenance, error) {
	if off < 0 || off >= im.size {
		return Provenance{}, fmt.Errorf("vdisk: %s: offset %d is outside the disk (%d bytes)", im.name, off, im.size)
	}
	var r blockmap.Run
	var d int
	var err error
	if c, ok := im.m.(*chain); ok {
		r, d, err = c.mapLayer(off)
	} else {
		r, err = im.m.Map(off)
	}
	if err != nil {
		return Provenance{}, err
	}
	p := Provenance{Off: r.Off, Len: r.Len, Kind: r.Kind, Depth: d, Phys: -1}
	if r.Kind == blockmap.Stored {
		p.Phys = r.Phys
	}
	return p, nil
}
