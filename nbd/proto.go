package nbd

// Wire values from the NBD protocol specification
// (https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md).
// Only the values this server sends or understands are listed.

const (
	magicNBD          uint64 = 0x4e42444d41474943 // "NBDMAGIC"
	magicOption       uint64 = 0x49484156454F5054 // "IHAVEOPT"
	magicOptionReply  uint64 = 0x3e889045565a9
	magicRequest      uint32 = 0x25609513
	magicSimpleReply  uint32 = 0x67446698
	magicStructured   uint32 = 0x668e33ef
	handshakeFixed    uint16 = 1 << 0 // NBD_FLAG_FIXED_NEWSTYLE
	handshakeNoZeroes uint16 = 1 << 1 // NBD_FLAG_NO_ZEROES
	clientFixed       uint32 = 1 << 0 // NBD_FLAG_C_FIXED_NEWSTYLE
	clientNoZeroes    uint32 = 1 << 1 // NBD_FLAG_C_NO_ZEROES
)

// Options (NBD_OPT_*).
const (
	optExportName      uint32 = 1
	optAbort           uint32 = 2
	optList            uint32 = 3
	optStartTLS        uint32 = 5
	optInfo            uint32 = 6
	optGo              uint32 = 7
	optStructured      uint32 = 8
	optListMetaContext uint32 = 9
	optSetMetaContext  uint32 = 10
)

// Option reply types (NBD_REP_*); errors have bit 31 set.
const (
	repAck         uint32 = 1
	repServer      uint32 = 2
	repInfo        uint32 = 3
	repMetaContext uint32 = 4
	repErrUnsup    uint32 = 1<<31 + 1
	repErrInvalid  uint32 = 1<<31 + 3
	repErrTLSReqd  uint32 = 1<<31 + 5
	repErrUnknown  uint32 = 1<<31 + 6
	repErrShutdown uint32 = 1<<31 + 7
)

// Information types of NBD_REP_INFO (NBD_INFO_*).
const (
	infoExport      uint16 = 0
	infoName        uint16 = 1
	infoDescription uint16 = 2
	infoBlockSize   uint16 = 3
)

// Transmission flags (NBD_FLAG_*).
const (
	flagHasFlags        uint16 = 1 << 0
	flagReadOnly        uint16 = 1 << 1
	flagSendFlush       uint16 = 1 << 2
	flagSendFUA         uint16 = 1 << 3
	flagSendTrim        uint16 = 1 << 5
	flagSendWriteZeroes uint16 = 1 << 6
	flagSendDF          uint16 = 1 << 7
	flagCanMultiConn    uint16 = 1 << 8
)

// Commands (NBD_CMD_*).
const (
	cmdRead        uint16 = 0
	cmdWrite       uint16 = 1
	cmdDisc        uint16 = 2
	cmdFlush       uint16 = 3
	cmdTrim        uint16 = 4
	cmdWriteZeroes uint16 = 6
	cmdBlockStatus uint16 = 7
)

// Command flags (NBD_CMD_FLAG_*).
const (
	cmdFlagFUA    uint16 = 1 << 0
	cmdFlagNoHole uint16 = 1 << 1
	cmdFlagDF     uint16 = 1 << 2
	cmdFlagReqOne uint16 = 1 << 3
)

// Structured reply chunks (NBD_REPLY_TYPE_*, NBD_REPLY_FLAG_DONE).
const (
	replyFlagDone        uint16 = 1 << 0
	replyTypeNone        uint16 = 0
	replyTypeOffsetData  uint16 = 1
	replyTypeOffsetHole  uint16 = 2
	replyTypeBlockStatus uint16 = 5
	replyTypeError       uint16 = 1<<15 + 1
)

// Error values (NBD_E*): the protocol's own numbers, not the host's errno.
const (
	errPerm     uint32 = 1
	errIO       uint32 = 5
	errInvalid  uint32 = 22
	errNoSpace  uint32 = 28
	errOverflow uint32 = 75
)

// base:allocation status flags (NBD_STATE_*).
const (
	stateHole uint32 = 1 << 0
	stateZero uint32 = 1 << 1
)

// allocationContext is the only metadata context served, and the id it
// gets when selected (ids are per connection and opaque to clients).
const (
	allocationContext   = "base:allocation"
	allocationContextID = 1
)

// Limits on what a client may make the server hold. A string (an export
// name, a query) is at most 4 KiB by the specification; an option holds a
// few of them.
const (
	maxString    = 4096
	maxOptionLen = 4*maxString + 64
	// MaxPayload is the largest READ or WRITE a client may send: the
	// specification's default maximum (32 MiB), advertised in
	// NBD_INFO_BLOCK_SIZE.
	MaxPayload = 32 << 20
	// minBlock and preferredBlock are advertised with MaxPayload: any
	// alignment works, 4 KiB works best.
	minBlock       = 1
	preferredBlock = 4096
	// maxDescriptors bounds one BLOCK_STATUS reply (8 bytes each, 512 KiB);
	// the specification lets a server answer a prefix, and clients ask on.
	maxDescriptors = 1 << 16
	// maxErrorMessage bounds the text of an error chunk or option error.
	maxErrorMessage = 1024
)
