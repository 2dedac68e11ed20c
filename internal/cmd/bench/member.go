package main

import (
	"fmt"
	"os"

	"github.com/ovfmount/ovfmount/ova"
)

// memberRange finds where a member's bytes are in the archive, with the
// same index the mount uses.
func memberRange(archive, name string) (off, size int64, err error) {
	f, err := os.Open(archive)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	st, _ := f.Stat()
	a, err := ova.Open(f, st.Size())
	if err != nil {
		return 0, 0, err
	}
	m, ok := a.Lookup(name)
	if !ok {
		return 0, 0, fmt.Errorf("%s: no member %s", archive, name)
	}
	_, phys, ok := m.Contiguous()
	if !ok {
		return 0, 0, fmt.Errorf("%s: %s is not stored in one piece", archive, name)
	}
	return phys, m.Size, nil
}
