package importers

import "sort"

// Target is an importer a package is checked against.
type Target string

const (
	VSphere    Target = "vsphere"    // VMware ovftool and the vSphere client
	VirtualBox Target = "virtualbox" // VirtualBox's appliance import
	VirtV2V    Target = "virt-v2v"   // virt-v2v -i ova
	Proxmox    Target = "proxmox"    // Proxmox VE's OVF/OVA import (qm importovf)
	OVirt      Target = "ovirt"      // oVirt's OVA import
	Spec       Target = "spec"       // DMTF DSP0243 itself
)

// Targets lists every target, in the order reports use.
var Targets = []Target{VSphere, VirtualBox, VirtV2V, Proxmox, OVirt, Spec}

// Severity is how bad a breach is for one target.
type Severity string

const (
	// Fail: the importer refuses the package, or imports it wrongly.
	Fail Severity = "fail"
	// Warn: it imports it with something unchecked or lost, or what it
	// does could not be confirmed.
	Warn Severity = "warn"
)

// Verdict is what a rule means for one target: how bad, and where that
// is written.
type Verdict struct {
	Severity Severity
	Source   string
}

// Rule is one thing an importer requires. Its ID is the same in the
// report, the tests and docs/importers.md.
type Rule struct {
	ID      string
	What    string
	Targets map[Target]Verdict
}

// Sources, each with its version. The importers' own code is cited where
// it decides; DSP0243 where the specification does.
const (
	srcDSP53     = "DMTF DSP0243 2.1.1 §5.3 (an OVA is a USTAR archive: the descriptor first, the manifest and certificate next or both at the end, the other files in References order); the clause as cited by bottlerocket-os/bottlerocket PR #1719, the text as quoted by the IBM OVF Toolkit guide and glennmatthews/cot ovf.py"
	srcDSP51     = "DMTF DSP0243 2.1.0 §5.1 (manifest lines ALG(name)= digest; the certificate file: a signature line over the manifest and an X.509 certificate)"
	srcDSP71     = "DMTF DSP0243 2.1.0 §7.1 File references (ovf:size is the file's size; ovf:compression is gzip or identity; every referenced file is in the package)"
	srcDSP91     = "DMTF DSP0243 2.1.0 §9.1 DiskSection (ovf:capacity is the virtual disk's size)"
	srcDSPSchema = "DMTF DSP0243 2.1.0 §6 and the DSP8023 schema (the descriptor is a namespace-well-formed XML document in the envelope/1 or envelope/2 namespace; 0.9 predates the standard)"

	srcVBoxTar    = "VirtualBox 7.x src/VBox/Runtime/common/zip/tarvfs.cpp (GitHub mirror VirtualBox/virtualbox @4908d8d1): rtZipTarReaderParseNextHeader returns VERR_TAR_UNSUPPORTED_PAX_TYPE for pax 'x'/'g' headers and VERR_TAR_UNSUPPORTED_GNU_HDR_TYPE for GNU sparse; GNU long names and base-256 sizes are read"
	srcVBoxStream = "VirtualBox 7.x src/VBox/Main/src-server/ApplianceImplImport.cpp (@4908d8d1) i_importOpenSourceFile: the OVA is read forward only, and a file behind the reader fails with \"Unexpected end of OVA / internal error - missing\"; which order the disks are taken in was not confirmed"
	srcVBoxFormat = "VirtualBox 7.x ApplianceImplImport.cpp (@4908d8d1) interpret: a disk whose medium format is not VMDK (or RAW, taken as a DVD image) fails with \"Unsupported format for virtual disk image\""
	srcVBoxMf     = "VirtualBox 7.x src/VBox/Runtime/common/checksum/manifest2.cpp RTManifestReadStandardEx (MD5, SHA1, SHA256, SHA512; blanks around delimiters allowed); other spellings not confirmed"
	srcVBoxCert   = "VirtualBox 7.x ApplianceImplImport.cpp (@4908d8d1) i_readSignatureFile and i_readTailProcessing: \"Malformed .cert-file\", \"Error parsing the .cert-file\", \"Could not locate signed digest for '<name>.mf'\" and \"Found .cert-file but no .mf-file\" all fail the import"
	srcVBoxChunk  = "VirtualBox 7.x src/VBox/Main/xml/ovfreader.cpp (@4908d8d1) HandleDiskSection does not read ovf:chunkSize (left as work to do in the source), so the import looks for the href itself, which a chunked file does not have (\"Unexpected end of OVA / internal error - missing\")"
	srcVBoxUnconf = "not confirmed in VirtualBox 7.x ApplianceImplImport.cpp: a warning only"

	srcV2VMf     = "virt-v2v 2.13.3 input/OVA.ml: manifest lines must match ^(SHA1|SHA256)\\s*\\((.*)\\)\\s*= ([0-9a-fA-F]+)\\r?$; any other line is only warned about (\"unable to parse line from manifest file\") and its digest is not checked"
	srcV2VCompr  = "virt-v2v 2.13.3 input/OVF.ml: ovf:compression must be absent, identity or gzip, else \"unsupported compression in OVF\""
	srcV2VNS     = "virt-v2v 2.13.3 input/OVF.ml registers only the http://schemas.dmtf.org/ovf/envelope/1 namespace: a 0.9 or 2.x envelope yields no system and no disks"
	srcV2VChunk  = "virt-v2v 2.13.3 input/input_ova.ml find_file_or_snapshot: an href that is absent is taken from the highest-numbered href.NNNNNNNNN, as if chunks were snapshots (libguestfs/virt-v2v#189)"
	srcV2VTar    = "virt-v2v 2.13.3 input/OVA.ml: tar, tar.gz, tar.xz and zip are read; other containers fail with \"unsupported file format\""
	srcOVirt     = "oVirt: ovirt-engine packaging/ansible-runner-service-project/project/roles/ovirt-ova-query/files/query_ova.py reads the OVA with Python's tarfile; vdsm lib/vdsm/v2v.py OvaCommand converts it with virt-v2v -i ova, so virt-v2v's rules apply"
	srcPVENS     = "Proxmox VE pve-storage 9.1.7 src/PVE/GuestImport/OVF.pm parse_ovf_do registers only the http://schemas.dmtf.org/ovf/envelope/1 namespace"
	srcPVEName   = "Proxmox VE pve-storage 9.1.7 src/PVE/Storage.pm OVA_CONTENT_RE_1 and GuestImport.pm: a disk inside an OVA must be named [ a-zA-Z0-9-.+=_]+.(qcow2|raw|vmdk), beside the descriptor, and its content is checked against that format"
	srcPVECompr  = "Proxmox VE pve-storage 9.1.7 src/PVE/GuestImport/OVF.pm never reads ovf:compression or ovf:chunkSize: the href's file is extracted and imported as it is"
	srcPVETar    = "Proxmox VE pve-storage 9.1.7 src/PVE/GuestImport.pm and OVF.pm extract with GNU tar -x; a zip is not a tar"
	srcVSOrder   = "vSphere/ovftool: \"Did not find an .ovf file at the beginning of the OVA package\" (coreos/coreos-assembler PR #1141, vSphere 6.7); vSphere \"will choke\" on an OVA URL whose descriptor is not first (bottlerocket-os/bottlerocket PR #1719)"
	srcVSMfSpell = "vSphere 8 rejected a manifest written as \"SHA2-256(...)=\" (OpenSSL 3's spelling): \"Invalid OVF checksum algorithm: SHA2-256\" (home-assistant/operating-system#3654); ovftool writes SHA1, SHA256 or SHA512 (--shaAlgorithm; William Lam, \"Default hashing algorithm changed in OVFTool 4.2\", 2016)"
	srcVSSHA1    = "vCenter 6.5, ESXi 6.7 and vSphere 8 refused SHA1 manifests with \"Invalid OVF checksum algorithm: SHA1\" (MISP/MISP#3947, OpenCTI-Platform/opencti#1642, nextcloud/vm#2607) while others take them (turnkeylinux/tracker#827: older releases take SHA1 only); no VMware document found, hence a warning"
	srcVSMfBlank = "vCenter 7 refused \"SHA256 (name)= hex\" lines, written by sha256sum --tag, with \"Invalid OVF checksum algorithm: SHA256 \" (home-assistant/operating-system#826, fixed by PR #1674 writing openssl's \"SHA256(name)= hex\")"
	srcVSCert    = "VMware OVF Tool User's Guide, \"OVF Package Signing\" appendix: the .cert holds the signed digest of the manifest and the X.509 certificate; what ovftool does with a malformed one was not confirmed: a warning only"
	srcVSDisk    = "vSphere imports VMDK disks only, and its OVF upload path takes streamOptimized VMDKs: govmomi vmdk/import.go ErrInvalidFormat \"vmdk: invalid format (must be streamOptimized)\"; no VMware document found for other VMDK subformats, hence a warning"
	srcVSHW      = "Broadcom KB 315655 (formerly VMware KB 1003746), virtual machine hardware versions per ESXi release; a release refuses a family it does not know, vmx-NN newer than it included (\"Unsupported hardware family 'vmx-08'\" on ESXi 4.1, https://frgtech1.rssing.com/chan-14338137/article7.html)"
	srcVSOldSHA2 = "the vSphere C# client (vSphere 6.0 and older) accepts SHA1 manifests only: \"The following manifest file entry (line 1) is invalid: SHA256\" (William Lam, \"Default hashing algorithm changed in OVFTool 4.2\", 2016); the Web and HTML5 clients take SHA256"
	srcVSSpell   = "vSphere's answer to spellings other than SHA1, SHA256, SHA512 and SHA2-NNN was not confirmed: a warning only"
	srcVSUnconf  = "not confirmed for ovftool or the vSphere client: a warning only"
)

// Rules lists every rule, sorted by ID.
var Rules = sortRules([]Rule{
	{ID: "archive-container", What: "the package is a plain tar archive (an OVA), or an unpacked folder", Targets: map[Target]Verdict{
		Spec: {Fail, srcDSP53}, VirtV2V: {Fail, srcV2VTar}, OVirt: {Fail, srcOVirt + "; Python's tarfile does not open zip"},
		Proxmox: {Fail, srcPVETar}, VSphere: {Warn, srcVSUnconf}, VirtualBox: {Warn, srcVBoxUnconf}}},
	{ID: "descriptor-missing", What: "the package has an OVF descriptor", Targets: allTargets(Fail, map[Target]string{
		Spec: srcDSP53, VSphere: srcVSOrder, VirtualBox: "VirtualBox 7.x ApplianceImplImport.cpp: an OVA is read for its descriptor; without one there is nothing to import", VirtV2V: "virt-v2v 2.13.3 input/OVA.ml: \"no .ovf file was found\"",
		Proxmox: srcPVENS, OVirt: srcOVirt + "; query_ova.py raises \"Failed to find OVF\""})},
	{ID: "descriptor-first", What: "the descriptor is the first member of the OVA", Targets: map[Target]Verdict{
		Spec: {Fail, srcDSP53}, VSphere: {Fail, srcVSOrder}}},
	{ID: "manifest-cert-order", What: "the manifest and certificate come right after the descriptor, or (OVF 2.x) both at the end", Targets: map[Target]Verdict{
		Spec: {Fail, srcDSP53}, VSphere: {Warn, srcVSUnconf}}},
	{ID: "references-order", What: "the referenced files follow in References order", Targets: map[Target]Verdict{
		Spec: {Fail, srcDSP53}, VirtualBox: {Warn, srcVBoxStream}, VSphere: {Warn, srcVSUnconf}}},
	{ID: "tar-size-8gib", What: "no member is 8 GiB or larger, the most a USTAR size field holds", Targets: map[Target]Verdict{
		Spec: {Fail, srcDSP53}, VSphere: {Warn, srcVSUnconf}}},
	{ID: "tar-long-name", What: "every member name fits a USTAR header (100 bytes, or 155+100 split at a slash) without GNU or pax long names", Targets: map[Target]Verdict{
		Spec: {Fail, srcDSP53}, VSphere: {Warn, srcVSUnconf}}},
	{ID: "tar-pax-header", What: "no member needs a pax extended or global header", Targets: map[Target]Verdict{
		Spec: {Fail, srcDSP53}, VirtualBox: {Fail, srcVBoxTar}, VSphere: {Warn, srcVSUnconf}}},
	{ID: "tar-gnu-sparse", What: "no member is a GNU sparse file", Targets: map[Target]Verdict{
		Spec: {Fail, srcDSP53}, VirtualBox: {Fail, srcVBoxTar}, VSphere: {Warn, srcVSUnconf}}},
	{ID: "manifest-algorithm", What: "the manifest's digest algorithm is one the importer checks", Targets: map[Target]Verdict{
		Spec: {Fail, srcDSP51 + " names SHA digests only (which SHA algorithms each DSP0243 version names was not confirmed here, so SHA1, SHA256 and SHA512 all pass)"}, VSphere: {Warn, srcVSSHA1},
		VirtualBox: {Warn, srcVBoxMf}, VirtV2V: {Warn, srcV2VMf}, OVirt: {Warn, srcOVirt}}},
	{ID: "manifest-spelling", What: "the algorithm is spelled SHA1, SHA256 or SHA512, not SHA-256, SHA2-256 or sha256", Targets: map[Target]Verdict{
		Spec: {Fail, srcDSP51}, VSphere: {Fail, srcVSMfSpell}, VirtualBox: {Warn, srcVBoxMf},
		VirtV2V: {Warn, srcV2VMf}, OVirt: {Warn, srcOVirt}}},
	{ID: "manifest-syntax", What: "every manifest line is ALG(name)= hex, exactly", Targets: map[Target]Verdict{
		Spec: {Fail, srcDSP51}, VSphere: {Fail, srcVSMfBlank}, VirtV2V: {Warn, srcV2VMf}, OVirt: {Warn, srcOVirt}}},
	{ID: "cert-format", What: "the certificate file is a signature line naming the manifest, then a PEM X.509 certificate, beside a manifest", Targets: map[Target]Verdict{
		Spec: {Fail, srcDSP51}, VSphere: {Warn, srcVSCert}, VirtualBox: {Fail, srcVBoxCert}}},
	{ID: "disk-format", What: "every disk is in a format the importer reads", Targets: map[Target]Verdict{
		VSphere: {Fail, srcVSDisk}, VirtualBox: {Fail, srcVBoxFormat}, Proxmox: {Fail, srcPVEName}}},
	{ID: "vmdk-subformat", What: "VMDK disks are streamOptimized", Targets: map[Target]Verdict{
		VSphere: {Warn, srcVSDisk}}},
	{ID: "capacity-mismatch", What: "ovf:capacity equals the virtual size the disk's header gives", Targets: map[Target]Verdict{
		Spec: {Fail, srcDSP91}}},
	{ID: "size-mismatch", What: "ovf:size equals the size the archive stores", Targets: map[Target]Verdict{
		Spec: {Fail, srcDSP71}}},
	{ID: "compression", What: "ovf:compression is one the importer decompresses", Targets: map[Target]Verdict{
		Spec: {Fail, srcDSP71}, VirtV2V: {Fail, srcV2VCompr}, OVirt: {Fail, srcOVirt}, Proxmox: {Fail, srcPVECompr},
		VSphere: {Warn, srcVSUnconf}, VirtualBox: {Warn, srcVBoxUnconf}}},
	{ID: "chunk-size", What: "files are not split with ovf:chunkSize", Targets: map[Target]Verdict{
		VirtV2V: {Fail, srcV2VChunk}, OVirt: {Fail, srcOVirt}, Proxmox: {Fail, srcPVECompr}, VirtualBox: {Fail, srcVBoxChunk}}},
	{ID: "hardware-version", What: "the virtual hardware family is a vmx-NN the vSphere release knows", Targets: map[Target]Verdict{
		VSphere: {Fail, srcVSHW}}},
	{ID: "ovf-version", What: "the descriptor is OVF 1.x (the envelope/1 namespace)", Targets: map[Target]Verdict{
		VirtV2V: {Fail, srcV2VNS}, OVirt: {Fail, srcOVirt}, Proxmox: {Fail, srcPVENS}, Spec: {Warn, srcDSPSchema}}},
	{ID: "xml-invalid", What: "the descriptor is well-formed XML with an OVF Envelope", Targets: allTargets(Fail, map[Target]string{
		Spec: srcDSPSchema, VSphere: "a descriptor that does not parse as an OVF envelope leaves nothing to deploy", VirtualBox: "VirtualBox 7.x src/VBox/Main/xml/ovfreader.cpp parses the descriptor first; one that does not parse leaves nothing to import",
		VirtV2V: srcV2VNS, Proxmox: srcPVENS + " (XML::LibXML load_xml dies on malformed XML)", OVirt: srcOVirt})},
	{ID: "xml-undefined-prefix", What: "every namespace prefix in the descriptor is declared", Targets: map[Target]Verdict{
		Spec: {Fail, srcDSPSchema}, VSphere: {Warn, srcVSUnconf}, VirtualBox: {Warn, srcVBoxUnconf},
		VirtV2V: {Warn, "not confirmed for virt-v2v 2.13.3 (libxml2)"}, Proxmox: {Warn, "not confirmed for pve-storage 9.1.7 (XML::LibXML)"}, OVirt: {Warn, srcOVirt}}},
	{ID: "reference-missing", What: "every file the References name is in the package", Targets: map[Target]Verdict{
		Spec: {Fail, srcDSP71}, VSphere: {Warn, srcVSUnconf}, VirtualBox: {Fail, srcVBoxStream},
		VirtV2V: {Fail, "virt-v2v 2.13.3 input/input_ova.ml: a disk whose href is in neither the archive nor its chunks fails"},
		Proxmox: {Fail, srcPVEName}, OVirt: {Fail, srcOVirt}}},
	{ID: "file-unreferenced", What: "every file in the package is the descriptor, the manifest, the certificate or a referenced file", Targets: map[Target]Verdict{
		Spec: {Warn, srcDSP53 + "; whether unreferenced files are forbidden was not confirmed"}}},
})

func allTargets(sev Severity, src map[Target]string) map[Target]Verdict {
	out := map[Target]Verdict{}
	for t, s := range src {
		out[t] = Verdict{sev, s}
	}
	return out
}

func sortRules(rs []Rule) []Rule {
	sort.Slice(rs, func(i, j int) bool { return rs[i].ID < rs[j].ID })
	return rs
}

// RuleByID finds a rule.
func RuleByID(id string) (Rule, bool) {
	for _, r := range Rules {
		if r.ID == id {
			return r, true
		}
	}
	return Rule{}, false
}

// ParseTarget reads a target's name.
func ParseTarget(s string) (Target, bool) {
	for _, t := range Targets {
		if string(t) == s {
			return t, true
		}
	}
	return "", false
}
