package regf_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/ovfmount/ovfmount/guestfs/inspect/regf"
	"github.com/ovfmount/ovfmount/internal/regftest"
)

const fuzzReg = `[\Microsoft\Windows NT\CurrentVersion]
"ProductName"="Windows 10 Pro"
"CurrentMajorVersionNumber"=dword:0000000a
"Multi"=hex(7):61,00,00,00,62,00,00,00,00,00
"Bin"=hex:01,02,03,04,05,06,07,08,09
[\Select]
"Current"=dword:00000001
[\ControlSet001\Control\ComputerName\ComputerName]
"ComputerName"="WIN-TEST"
[\ControlSet001\Services\Tcpip\Parameters]
"Hostname"="win-test"
[\Many\A]
[\Many\B]
[\Many\C]
[\Many\D]
`

// FuzzHive opens mutated hives (a blank one, and one hivexregedit wrote)
// and reads every key and value it can reach, with bounds on the walk: a
// damaged hive must give errors, never a panic or a hang.
func FuzzHive(f *testing.F) {
	f.Add(regftest.Blank("ROOT"))
	b, err := os.ReadFile(regftest.Build(f, f.TempDir(), "SEED", fuzzReg))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := regf.Open(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		h.Open(`Microsoft\Windows NT\CurrentVersion`)
		h.Open(`ControlSet001\Control\ComputerName\ComputerName`)
		root, err := h.Root()
		if err != nil {
			return
		}
		// The walk's own bounds: keys a damaged hive lists many times are
		// read once, and the values read in all are capped, since each one
		// may cost up to the hive's size.
		seen := map[uint32]bool{}
		values := 0
		var walk func(k *regf.Key, depth int)
		walk = func(k *regf.Key, depth int) {
			if seen[k.Offset()] || len(seen) > 100 || depth > 32 {
				return
			}
			seen[k.Offset()] = true
			if vs, err := k.Values(); err == nil {
				for _, v := range vs {
					if values++; values > 300 {
						break
					}
					v.Data(1 << 20)
					v.String()
					v.Strings()
					v.Uint()
				}
			}
			k.Value("Current")
			k.Subkey("B")
			k.Subkeys(func(s *regf.Key) error { walk(s, depth+1); return nil })
		}
		walk(root, 0)
	})
}
