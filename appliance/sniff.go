package appliance

import (
	"errors"
	"io"
	"strings"

	"github.com/ovfmount/ovfmount/ova/ovf"
)

type sniffed int

const (
	sniffNotXML sniffed = iota
	sniffXML            // XML, but not an OVF descriptor
	sniffOVF
)

// sniffDescriptor recognises an OVF descriptor as the descriptor's parser
// would (see ovf.Sniff): whatever comes before the root element, its local
// name is Envelope. For XML that is not one, it says why, with the
// parser's position.
func sniffDescriptor(r io.ReaderAt, size int64) (sniffed, string) {
	err := ovf.Sniff(io.NewSectionReader(r, 0, size))
	switch {
	case err == nil:
		return sniffOVF, ""
	case errors.Is(err, ovf.ErrNotXML), !errors.Is(err, ovf.ErrNotOVF):
		return sniffNotXML, ""
	}
	return sniffXML, strings.TrimPrefix(err.Error(), "ovf: ")
}

// descriptorFailure words why a descriptor the user named does not parse.
func descriptorFailure(err error) string {
	msg := strings.TrimPrefix(err.Error(), "ovf: ")
	if strings.HasPrefix(msg, "not a valid OVF descriptor") {
		return msg
	}
	return "not a valid OVF descriptor: " + msg
}
