// Package importers checks an opened OVF package against what each
// importer accepts, before a long upload finds out: VMware's ovftool and
// vSphere client ("vsphere"), VirtualBox's appliance import
// ("virtualbox"), virt-v2v -i ova ("virt-v2v"), Proxmox VE's OVF/OVA
// import, the one qm importovf uses ("proxmox"), oVirt's OVA import
// ("ovirt"), and the OVF specification itself, DMTF DSP0243 ("spec").
//
// # What each importer accepts
//
// Importers read different subsets of what producers write. VirtualBox
// streams an OVA forward through its own tar reader, which refuses pax
// headers and GNU sparse members, and fails when a disk it needs lies
// behind one it has passed. virt-v2v and Proxmox extract with GNU tar,
// so any tar dialect is fine, but they read only the OVF 1.x envelope
// namespace; virt-v2v checks only SHA1 and SHA256 manifest lines, in one
// spelling, and refuses an ovf:compression other than gzip; Proxmox reads
// only disks named *.vmdk, *.qcow2 or *.raw beside the descriptor. oVirt
// finds the descriptor with Python's tarfile and converts foreign OVAs
// with virt-v2v, so it inherits virt-v2v's limits. vSphere wants the
// descriptor first, VMDK disks, a known hardware version, and manifest
// algorithms spelled as ovftool writes them.
//
// # Why a package is refused
//
// Each [Rule] names what it checks, and for each target how bad a breach
// is ([Fail]: the importer refuses the package or imports it wrongly;
// [Warn]: it imports it with something unchecked or lost, or the
// importer's behaviour could not be confirmed) and where that is written:
// the DSP0243 clause, or the importer's code or documentation with its
// version. docs/importers.md lists the same rules with the same ids. A
// rule without a confirmed source for an importer leaves that importer
// out, or only warns.
//
// [Check] reads only what the package model already holds (the archive's
// member order and tar headers, the descriptor, the manifest and
// certificate bytes, the disks' headers); it never reads disk data, so it
// answers at once whatever the appliance's size. The manifest and
// certificate are read with the bounds package manifest sets, the
// descriptor's XML with a bound on its size.
package importers
