// Package appliance is the model of an OVF package that the mount,
// `ovfmount info` and `ovfmount verify` share, so that the three never
// disagree about what a package is: it decides once, from an opened
// source, everything the others then only show or check.
//
// # What it decides
//
//   - What the source is: an OVA (a tar archive), the descriptor of an
//     unpacked package (recognised as an XML parser would, whatever the
//     file is called), a loose disk image (a one-disk package), or nothing
//     it can mount, named as what it is ([NotPackageError]).
//   - The descriptor. In an OVA it is the first member, in archive order,
//     whose name ends in .ovf, as the OVF specification makes the first
//     file of an OVA its descriptor ([Options.Descriptor] picks another);
//     other descriptors are warnings. In a folder it is the .ovf named, or
//     the only one.
//   - The package's own manifest and certificate: <base>.mf and <base>.cert
//     beside the descriptor, as the specification names them. With a
//     single descriptor and no <base>.mf, one other manifest may be read
//     leniently, with a warning; it never makes the package signed. Every
//     other manifest and certificate is an ordinary file that vouches for
//     nothing (RoleForeign). An unpacked package takes only its own files
//     from its folder.
//   - The logical files the References name (chunked, gzip-compressed),
//     the disks and their raw views, and every warning, each said once.
//   - The plan: every entry the mount shows ([Package.Entries]), each with
//     one [Content] that answers each read with one route (see package
//     route).
//
// The integrity checks of package integrity are built here from that
// decision, and every byte of every entry is read through them.
//
// # What it refuses
//
// It never reads a host path that a package names: an href, an extent or
// a chunk is looked up among the archive's members, or inside the folder
// of an unpacked package (os.Root), and nowhere else.
package appliance
