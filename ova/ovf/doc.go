// Package ovf reads an OVF descriptor (the .ovf file of an OVA) into a
// model of what the appliance is made of: the files of the package, the
// virtual disks and which file holds each, the networks, each virtual
// system's CPUs and memory (in each deployment option), controllers,
// drives, NICs, products, properties and licences, and each
// VirtualSystemCollection (vApp) with its members, startup order and
// resource allocation. It is the model behind `ovfmount info` and behind
// the disk views of the mount.
//
// # What it promises
//
// [Parse] reads OVF 0.9 (VMware's pre-DMTF namespace, with sections written
// as Section/Content elements and an xsi:type), 1.x and 2.x (StorageItem,
// EthernetPortItem, rasd:Caption). Elements are matched by local name, so
// namespace variants, a missing default namespace, ovf:-prefixed elements
// and oVirt's trailing-slash namespace all read the same; elements in the
// vmw:, vbox:, ovirt:, xenovf: and vcloud: namespaces are skipped, and an
// unknown major version is read as the newest known one with a warning.
//
// The reader is lenient and the reporting strict: whatever a lenient
// reader tolerates is parsed, and each deviation becomes one line in
// [Envelope.Warnings]: hrefs that are absolute, climb out with "..", or are
// URLs (the caller refuses to follow them); files named twice; disks whose
// fileRef names no File or that no item attaches; HostResources naming an
// unknown disk or file; systems sharing an id; unusable numbers. Capacities
// are resolved to bytes through capacityAllocationUnits and ${property}
// references; a capacity that cannot be known, or would not fit in int64,
// is -1 rather than a guess.
//
// # What it refuses
//
// Parse fails, with an error wrapping a sentinel, only on input that is not
// an OVF envelope ([ErrNotOVF]: not XML at all, which also wraps
// [ErrNotXML]; not well-formed XML, invalid UTF-8, text before the root, a
// root other than Envelope, each an [*XMLError] with the line and column)
// or that breaks a safety bound: more than 16 MiB,
// 100 000 elements or 500 000 attributes ([ErrTooLarge]), nesting deeper
// than 128 ([ErrTooDeep]), or a document type declaration that declares
// entities ([ErrEntity]), the start of every XXE and entity-expansion
// attack. No entity is ever expanded beyond XML's five predefined ones, and
// nothing but the given reader is read: no file, no network. An error of
// that reader is returned wrapped, as itself.
//
// A declared encoding is believed only when the bytes agree: a false
// encoding="utf-16" on ASCII bytes (XenCenter) is read as UTF-8 with a
// warning, real UTF-16 is transcoded, and ISO-8859-1 is decoded.
//
// # Recognising a descriptor
//
// [Sniff] decides from at most [SniffBytes] of a file whether it is a
// descriptor, reading its start exactly as Parse does (byte order marks,
// the XML declaration, comments, processing instructions, a DOCTYPE), and
// tells a descriptor from XML that is not one and from what is not XML at
// all (an OVA's tar header, a disk image). Where it refuses, Parse
// refuses in the same words.
//
// It does not compare the descriptor with the archive: whether the files
// exist, their sizes and their formats are the caller's to check.
package ovf
