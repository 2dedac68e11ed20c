package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/spf13/pflag"

	"github.com/ovfmount/ovfmount/appliance"
	"github.com/ovfmount/ovfmount/ova/integrity"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

const mapUsage = `Usage: ovfmount map [flags] ARCHIVE DISK

Prints where each byte of a disk's raw view comes from: for each run,
whether it holds data, reads as zeros because a layer says so, or is a hole
no layer holds (zeros too), which layer of the disk's chain supplies it
(depth 0 is the disk itself, 1 its parent, and so on) and at which offset
of which file. The JSON output has qemu-img map --output=json's fields
(start, length, depth, present, zero, data, offset; compressed for data
that is decoded, which has no offset), plus the layer's file, so the two
can be compared run for run.

DISK is the disk's file in the package (its href, or the member's name),
its view (disks/NAME.raw, or NAME.raw) or its ovf:diskId. It reads only the
disks' tables, as info does: it verifies nothing.

Flags:
%s`

// mapRun is one line of the map, as qemu-img map --output=json spells it.
type mapRun struct {
	Start      int64  `json:"start"`
	Length     int64  `json:"length"`
	Depth      int    `json:"depth"`
	Present    bool   `json:"present"`
	Zero       bool   `json:"zero"`
	Data       bool   `json:"data"`
	Compressed bool   `json:"compressed,omitempty"`
	Offset     *int64 `json:"offset,omitempty"`
	File       string `json:"file"`
}

func runMap(args []string, stdout, stderr io.Writer) int {
	var asJSON bool
	var v verify
	fl := pflag.NewFlagSet("ovfmount map", pflag.ContinueOnError)
	fl.SortFlags = false
	fl.SetOutput(io.Discard)
	fl.BoolVar(&asJSON, "json", false, "print the runs as a JSON array, as qemu-img map --output=json does")
	v.flags(fl, false)
	err := fl.Parse(args)
	if errors.Is(err, pflag.ErrHelp) {
		fmt.Fprintf(stdout, mapUsage, fl.FlagUsages())
		return exitOK
	}
	if err == nil && fl.NArg() != 2 {
		err = fmt.Errorf("need ARCHIVE and DISK, got %d argument(s)", fl.NArg())
	}
	if err != nil {
		fmt.Fprintf(stderr, "ovfmount map: %v\nRun 'ovfmount map --help' for usage.\n", err)
		return exitUsage
	}
	runs, err := mapOf(fl.Arg(0), fl.Arg(1), &v, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "ovfmount map: %v\n", err)
		return codeOf(err)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(runs); err != nil {
			return exitInternal
		}
		return exitOK
	}
	// Offsets right-aligned, as qemu-img map prints them; the file last.
	w := len("LENGTH")
	if n := len(runs); n > 0 {
		w = max(w, len(fmt.Sprint(runs[n-1].Start+runs[n-1].Length)))
	}
	fmt.Fprintf(stdout, "%*s  %*s  %5s  %-10s  %*s  %s\n", w, "START", w, "LENGTH", "DEPTH", "KIND", w, "OFFSET", "FILE")
	for _, r := range runs {
		off := "-"
		if r.Offset != nil {
			off = fmt.Sprint(*r.Offset)
		}
		fmt.Fprintf(stdout, "%*d  %*d  %5d  %-10s  %*s  %s\n", w, r.Start, w, r.Length, r.Depth, kindWord(r), w, off, r.File)
	}
	return exitOK
}

func kindWord(r mapRun) string {
	switch {
	case r.Compressed:
		return "compressed"
	case r.Data:
		return "data"
	case r.Present:
		return "zero"
	}
	return "hole"
}

// mapOf walks the view of the disk named disk in the package at arg.
func mapOf(arg, disk string, v *verify, stderr io.Writer) ([]mapRun, error) {
	pkg, rf, err := openPackage(arg, v, openWith{mode: integrity.Off, log: warnLogger(stderr)})
	if err != nil {
		return nil, err
	}
	defer pkg.Close()
	if rf != nil {
		defer rf.Close()
	}
	k, err := findDisk(pkg, disk)
	if err != nil {
		return nil, err
	}
	im := k.Image()
	layers := im.Layers()
	runs := []mapRun{}
	for pos := int64(0); pos < im.Size(); {
		p, err := im.Provenance(pos)
		if err != nil {
			return nil, fail(exitUsage, "%s: %v", disk, err)
		}
		end := p.Off + p.Len
		r := mapRun{Start: pos, Length: end - pos, Depth: p.Depth, File: layers[p.Depth].Name,
			Present: p.Kind != blockmap.Hole, Zero: !p.Kind.HasData(), Data: p.Kind.HasData(),
			Compressed: p.Kind == blockmap.Compressed}
		if p.Kind == blockmap.Stored {
			o := p.Phys + pos - p.Off
			r.Offset = &o
		}
		runs = appendRun(runs, r)
		pos = end
	}
	return runs, nil
}

// appendRun adds r, merged into the last run where it continues it: the
// same layer, the same kind, and for stored data the next bytes of the
// file, as qemu-img map merges.
func appendRun(runs []mapRun, r mapRun) []mapRun {
	if n := len(runs); n > 0 {
		l := &runs[n-1]
		same := l.Depth == r.Depth && l.Present == r.Present && l.Zero == r.Zero && l.Data == r.Data &&
			l.Compressed == r.Compressed && (l.Offset == nil) == (r.Offset == nil)
		if same && (l.Offset == nil || *l.Offset+l.Length == *r.Offset) {
			l.Length += r.Length
			return runs
		}
	}
	return append(runs, r)
}

// findDisk is the disk a user names by its file, its view or its id.
func findDisk(pkg *appliance.Package, name string) (*appliance.Disk, error) {
	var names []string
	for _, k := range pkg.Disks {
		view := k.View
		if view != "" {
			names = append(names, view)
		}
		if k.Image() == nil {
			if name == k.Name || name == k.Href || name == k.ID {
				return nil, fail(exitUsage, "%s has no raw view, so no map: %v", name, k.Err)
			}
			continue
		}
		if name == k.Name || name == k.Href || (k.ID != "" && name == k.ID) ||
			view != "" && (name == view || name == path.Base(view)) {
			return k, nil
		}
	}
	return nil, fail(exitUsage, "no disk %q with a view in the package (its views: %s)", name, strings.Join(names, ", "))
}
