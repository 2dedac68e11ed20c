package partition

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
)

// This file runs the oracles: sfdisk, partx (libblkid's reading of the
// table, the closest userspace twin of the kernel's) and sgdisk, and
// parses what they print.

// newImage makes a sparse file of size bytes in a test folder.
func newImage(t testing.TB, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

// run runs a tool with stdin and returns its stdout, failing on error.
func run(t testing.TB, stdin, name string, args ...string) string {
	t.Helper()
	out, errOut, err := runErr(t, stdin, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func runErr(t testing.TB, stdin, name string, args ...string) (string, string, error) {
	t.Helper()
	testutil.RequireTool(t, name)
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// sfdisk writes a table from a script given on stdin, as a user would.
func sfdisk(t testing.TB, img, script string) {
	t.Helper()
	run(t, script, "sfdisk", "-q", "--no-reread", "--no-tell-kernel", img)
}

type sfPart struct {
	Node     string `json:"node"`
	Start    int64  `json:"start"`
	Size     int64  `json:"size"`
	Type     string `json:"type"`
	UUID     string `json:"uuid"`
	Name     string `json:"name"`
	Attrs    string `json:"attrs"`
	Bootable bool   `json:"bootable"`
}

type sfTable struct {
	Label      string   `json:"label"`
	ID         string   `json:"id"`
	SectorSize int      `json:"sectorsize"`
	Partitions []sfPart `json:"partitions"`
}

// sfdiskJSON is `sfdisk --json`, with what it said on stderr (its
// complaints about a damaged table).
func sfdiskJSON(t testing.TB, img string) (*sfTable, string) {
	t.Helper()
	out, errOut, err := runErr(t, "", "sfdisk", "--json", img)
	if err != nil {
		t.Fatalf("sfdisk --json %s: %v\n%s", img, err, errOut)
	}
	var v struct {
		PT sfTable `json:"partitiontable"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("sfdisk --json: %v\n%s", err, out)
	}
	return &v.PT, errOut
}

// number is the partition number sfdisk puts at the end of a node name.
func (p sfPart) number(t testing.TB, img string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(p.Node, img))
	if err != nil {
		t.Fatalf("sfdisk node %q of %q: %v", p.Node, img, err)
	}
	return n
}

type pxPart struct {
	NR           int
	Start, Size  int64 // sectors
	UUID, Name   string
	Type, Scheme string
	Flags        uint64
}

var pxField = regexp.MustCompile(`(\w+)="((?:[^"\\]|\\.)*)"`)

// partx lists the partitions as libblkid reads them.
func partx(t testing.TB, img string) []pxPart {
	t.Helper()
	out, errOut, err := runErr(t, "", "partx", "-g", "-P", "-o", "NR,START,SECTORS,UUID,NAME,TYPE,FLAGS,SCHEME", img)
	if err != nil {
		if strings.Contains(errOut, "failed to read partition table") {
			return nil // libblkid found no table
		}
		t.Fatalf("partx %s: %v\n%s", img, err, errOut)
	}
	var ps []pxPart
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var p pxPart
		for _, m := range pxField.FindAllStringSubmatch(line, -1) {
			v := unescapeHex(m[2])
			switch m[1] {
			case "NR":
				p.NR, _ = strconv.Atoi(v)
			case "START":
				p.Start, _ = strconv.ParseInt(v, 10, 64)
			case "SECTORS":
				p.Size, _ = strconv.ParseInt(v, 10, 64)
			case "UUID":
				p.UUID = v
			case "NAME":
				p.Name = v
			case "TYPE":
				p.Type = v
			case "FLAGS":
				p.Flags, _ = strconv.ParseUint(strings.TrimPrefix(v, "0x"), 16, 64)
			case "SCHEME":
				p.Scheme = v
			}
		}
		ps = append(ps, p)
	}
	return ps
}

// unescapeHex undoes the \xNN escapes partx prints for non-ASCII bytes.
func unescapeHex(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if v, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b = append(b, byte(v))
				i += 3
				continue
			}
		}
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b = append(b, s[i])
	}
	return string(b)
}

type sgPart struct {
	Number      int
	First, Last int64
	TypeGUID    string
	TypeName    string
	UUID        string
	Attrs       uint64
	Name        string
}

var sgRow = regexp.MustCompile(`(?m)^\s+(\d+)\s+(\d+)\s+(\d+)\s`)

// sgdiskParts lists the partitions `sgdisk -p` shows, each with the
// details of `sgdisk -i N`.
func sgdiskParts(t testing.TB, img string) []sgPart {
	t.Helper()
	var ps []sgPart
	for _, m := range sgRow.FindAllStringSubmatch(run(t, "", "sgdisk", "-p", img), -1) {
		n, _ := strconv.Atoi(m[1])
		p := sgPart{Number: n}
		p.First, _ = strconv.ParseInt(m[2], 10, 64)
		p.Last, _ = strconv.ParseInt(m[3], 10, 64)
		for _, line := range strings.Split(run(t, "", "sgdisk", "-i", m[1], img), "\n") {
			k, v, ok := strings.Cut(line, ": ")
			if !ok {
				continue
			}
			switch k {
			case "Partition GUID code":
				guid, name, _ := strings.Cut(v, " ")
				p.TypeGUID = guid
				p.TypeName = strings.TrimSuffix(strings.TrimPrefix(name, "("), ")")
			case "Partition unique GUID":
				p.UUID = v
			case "Attribute flags":
				p.Attrs, _ = strconv.ParseUint(v, 16, 64)
			case "Partition name":
				p.Name = strings.TrimSuffix(strings.TrimPrefix(v, "'"), "'")
			case "First sector":
				f, _, _ := strings.Cut(v, " ")
				if x, _ := strconv.ParseInt(f, 10, 64); x != p.First {
					t.Fatalf("sgdisk -i %d: first sector %s, -p said %d", n, f, p.First)
				}
			}
		}
		ps = append(ps, p)
	}
	return ps
}

// readImage opens an image and reads its table with Read.
func readImage(t testing.TB, img string) (*Table, error) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return Read(f, st.Size())
}

func mustRead(t testing.TB, img string) *Table {
	t.Helper()
	tab, err := readImage(t, img)
	if err != nil {
		t.Fatalf("Read %s: %v", img, err)
	}
	return tab
}

func (t *Table) byNumber(n int) *Partition {
	for i := range t.Partitions {
		if t.Partitions[i].Number == n {
			return &t.Partitions[i]
		}
	}
	return nil
}

// patch overwrites bytes of an image, to damage a table as a bad disk or
// a careless tool would.
func patch(t testing.TB, img string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func readAt(t testing.TB, img string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

func hasWarning(tab *Table, sub string) bool {
	for _, w := range tab.Warnings {
		if strings.Contains(w, sub) {
			return true
		}
	}
	return false
}
