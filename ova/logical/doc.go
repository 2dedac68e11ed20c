// Package logical reads a file of an OVF package as the descriptor names
// it, from the members that store it: the chunks of a file split with
// ovf:chunkSize joined back to back ([Joined]), and a gzip-compressed file
// (ovf:compression="gzip") decompressed at any offset through a seek index
// kept between runs ([OpenGzip]); and a whole archive compressed with
// gzip (an .ova.gz), decompressed the same way, with its seek index kept
// between runs too ([Decompress]).
//
// Which members make up which file is the package model's decision; this
// package only reads them, through the integrity checks where they apply,
// so that a logical file fails exactly when a member under it does.
package logical
