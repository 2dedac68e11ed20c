package inspect

import (
	"debug/pe"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/internal/regftest"
)

// softwareReg is what a Windows 10 22H2 keeps under CurrentVersion, and
// a few hundred other keys so that the hive spans many bins.
func softwareReg(product, build string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `[\Microsoft\Windows NT\CurrentVersion]
"ProductName"=%q
"CurrentVersion"="6.3"
"CurrentMajorVersionNumber"=dword:0000000a
"CurrentMinorVersionNumber"=dword:00000000
"CurrentBuild"=%q
"CurrentBuildNumber"=%q
"UBR"=dword:00000ecb
"DisplayVersion"="22H2"
"ReleaseId"="2009"
"EditionID"="Professional"
"InstallationType"="Client"
[\Microsoft\Windows\CurrentVersion]
"ProgramFilesDir"="C:\\Program Files"
`, product, build, build)
	for i := 0; i < 300; i++ {
		fmt.Fprintf(&b, "[\\Classes\\.ext%03d]\n@=\"File.Type%d\"\n", i, i)
	}
	return b.String()
}

const systemReg = `[\Select]
"Current"=dword:00000002
"Default"=dword:00000002
[\ControlSet001\Control\ComputerName\ComputerName]
"ComputerName"="OLD-NAME"
[\ControlSet001\Services\Tcpip\Parameters]
"Hostname"="old-name"
[\ControlSet002\Control\ComputerName\ComputerName]
"ComputerName"="WIN10-VM"
[\ControlSet002\Services\Tcpip\Parameters]
"Hostname"="win10-vm"
"Domain"=""
`

// realPE is a Windows executable made by Microsoft's tools, which every
// build of this module has at hand: golang.org/x/sys's signed test file.
func realPE(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "golang.org/x/sys").Output()
	if err != nil {
		t.Fatalf("go list golang.org/x/sys: %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "windows", "testdata", "ev-signed-file.exe")
}

// peOracle names a PE file's machine as debug/pe reads it.
func peOracle(t *testing.T, p string) string {
	t.Helper()
	f, err := pe.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return map[uint16]string{pe.IMAGE_FILE_MACHINE_I386: "i386", pe.IMAGE_FILE_MACHINE_AMD64: "x86_64", pe.IMAGE_FILE_MACHINE_ARM64: "aarch64"}[f.Machine]
}

// windowsTree lays out a system root as Windows (and XP's upper-case
// folders) name it, with hives hivexregedit wrote.
func windowsTree(t *testing.T, software, system string) (*tree, *regftest.Key, *regftest.Key) {
	g := newTree(t)
	cfg := "WINDOWS/system32/CONFIG"
	g.mkdir(cfg)
	var sw, sys *regftest.Key
	if software != "" {
		sw = regftest.Dump(t, regftest.Build(t, g.path(cfg), "software", software))
		os.Remove(g.path(cfg + "/software.reg"))
	}
	if system != "" {
		sys = regftest.Dump(t, regftest.Build(t, g.path(cfg), "SYSTEM", system))
		os.Remove(g.path(cfg + "/SYSTEM.reg"))
	}
	g.copyHost(realPE(t), "WINDOWS/system32/CMD.EXE")
	g.mkdir("Program Files")
	g.mkdir("Users/Public")
	return g, sw, sys
}

func value(t *testing.T, k *regftest.Key, path, name string) regftest.Value {
	t.Helper()
	v, ok := k.Find(path, name)
	if !ok {
		t.Fatalf("hivexml shows no %s\\%s", path, name)
	}
	return v
}

func TestWindows(t *testing.T) {
	g, sw, sys := windowsTree(t, softwareReg("Windows 10 Pro", "19045"), systemReg)
	oses := Inspect([]Volume{g.volume("disk1.p2", "", "")})
	if len(oses) != 1 {
		t.Fatalf("found %d systems", len(oses))
	}
	o := oses[0]
	cv := `Microsoft\Windows NT\CurrentVersion`
	current := value(t, sys, "Select", "Current").Number
	set := fmt.Sprintf("ControlSet%03d", current)
	want := OS{
		Volume: "disk1.p2", Type: "windows", Distro: "windows",
		Name:           string(value(t, sw, cv, "ProductName").Data),
		Version:        fmt.Sprintf("%d.%d", value(t, sw, cv, "CurrentMajorVersionNumber").Number, value(t, sw, cv, "CurrentMinorVersionNumber").Number),
		Build:          fmt.Sprintf("%s.%d", value(t, sw, cv, "CurrentBuildNumber").Data, value(t, sw, cv, "UBR").Number),
		Edition:        string(value(t, sw, cv, "EditionID").Data),
		DisplayVersion: string(value(t, sw, cv, "DisplayVersion").Data),
		Hostname:       string(value(t, sys, set+`\Services\Tcpip\Parameters`, "Hostname").Data),
		Arch:           peOracle(t, realPE(t)),
	}
	if fmt.Sprintf("%+v", o) != fmt.Sprintf("%+v", want) {
		t.Errorf("got  %+v\nwant %+v (from hivexml and debug/pe)", o, want)
	}
	if want.Hostname == "" || want.Arch == "" || want.Name == "" {
		t.Fatalf("the oracles gave empty values: %+v", want)
	}
}

// TestWindows11 checks the build rule: Windows 11 keeps "Windows 10" in
// ProductName, and the build tells them apart.
func TestWindows11(t *testing.T) {
	g, sw, _ := windowsTree(t, softwareReg("Windows 10 Enterprise", "22631"), "")
	oses := Inspect([]Volume{g.volume("w11", "", "")})
	if len(oses) != 1 {
		t.Fatalf("found %d systems", len(oses))
	}
	o := oses[0]
	stored := string(value(t, sw, `Microsoft\Windows NT\CurrentVersion`, "ProductName").Data)
	if o.Name != strings.Replace(stored, "Windows 10", "Windows 11", 1) || !hasWarning(o, stored) {
		t.Errorf("name %q (hive: %q), warnings %q", o.Name, stored, o.Warnings)
	}
	if o.Hostname != "" {
		t.Errorf("hostname %q without a SYSTEM hive", o.Hostname)
	}
}

// TestWindowsDamaged cuts the SOFTWARE hive short and fills SYSTEM with
// garbage: the system is still found, with warnings instead of values.
func TestWindowsDamaged(t *testing.T) {
	g, _, _ := windowsTree(t, softwareReg("Windows 10 Pro", "19045"), systemReg)
	cfg := g.path("WINDOWS/system32/CONFIG")
	b, err := os.ReadFile(filepath.Join(cfg, "software"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg, "software"), b[:8192], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg, "SYSTEM"), []byte(strings.Repeat("garbage!", 1000)), 0o644); err != nil {
		t.Fatal(err)
	}
	oses := Inspect([]Volume{g.volume("broken", "", "")})
	if len(oses) != 1 || oses[0].Type != "windows" {
		t.Fatalf("found %+v", oses)
	}
	o := oses[0]
	if !hasWarning(o, `SYSTEM: regf: not a registry hive`) || !hasWarning(o, "SOFTWARE") {
		t.Errorf("warnings %q", o.Warnings)
	}
}
