// Package integrity checks an OVF package's files against the package's
// own manifest and signature, and serves their bytes under those checks.
//
// # What it promises
//
// A signature vouches only for its own package. The certificate must sign
// the package's own manifest (the one the caller names, see [Package]),
// and the package counts as signed only when that manifest lists the
// descriptor with a digest that matches it: a valid signature over a
// manifest that says nothing of this descriptor vouches for nothing here.
// The manifest covers only the files it lists. Other manifests and
// certificates in the archive are ordinary files ([StatusForeign]).
//
// Each file is read through a [File], which follows the [Mode]:
//
//   - Off: no hashing at all.
//   - Lazy: reads are served at once; the first open of a listed file
//     starts its verification in the background (hashing it against the
//     manifest digest, and recording a BLAKE3 digest of every 32 KiB
//     piece, 512 KiB of table per GiB), and once it is verified every later
//     read is checked piece by piece against that table before a byte is
//     returned: a random read reads and hashes only the pieces it touches,
//     a sequential reader whole 1 MiB chunks, checked ahead of it.
//   - Strict: no byte of a listed file is served before the file is
//     verified; a bad signature, or with RequireTrustedSigner any package
//     not signed by a trusted signer, fails every file the manifest would
//     vouch for; unlisted files are refused unless AllowUnlisted.
//
// [Checks.VerifyAll] reads every byte of every listed file and reports the
// digest it computed. Chunk tables trusted by an earlier run are used only
// when the caller asks ([Options.UseCachedTables]), and they are keyed by
// the archive's identity, its ctime included, so a rewritten archive never
// matches them.
//
// # What it refuses
//
// It never decides which manifest or certificate belongs to the package:
// that is the caller's model of the package. It never reads outside the
// members it is given.
package integrity
