package s3

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/aws/smithy-go"
)

var (
	// ErrCredentials means there are no AWS credentials, or S3 refused
	// the ones given (an unknown access key, a wrong secret, an expired
	// token): what to fix is the credentials, not the URL.
	ErrCredentials = errors.New("AWS credentials missing or refused")
	// ErrNotFound means the bucket or the key does not exist. Errors that
	// match it also match remote.ErrNotFound when they come from a read.
	ErrNotFound = errors.New("no such S3 bucket or key")
	// ErrTooManyKeys means a listing went past MaxListKeys.
	ErrTooManyKeys = errors.New("too many S3 keys under the prefix")
)

// credentialCodes are the S3 error codes that mean the credentials are
// wrong, as opposed to the request or the permissions.
var credentialCodes = map[string]bool{
	"InvalidAccessKeyId":    true,
	"SignatureDoesNotMatch": true,
	"ExpiredToken":          true,
	"InvalidToken":          true,
	"TokenRefreshRequired":  true,
	"InvalidSecurity":       true,
	"MissingSecurityHeader": true,
	// Versity Gateway's name for an unknown access key, with a 404.
	"XAdminUserNotFound": true,
}

// notFoundCodes mean the bucket or key does not exist.
var notFoundCodes = map[string]bool{
	"NoSuchBucket": true,
	"NoSuchKey":    true,
	"NotFound":     true,
}

// Error is what S3 said about a failed request: the Code and Message of
// its XML error body. It matches ErrCredentials and ErrNotFound with
// errors.Is. It never holds what S3 echoes back of the request (the
// string it signed, the signature provided), only Code, Message, Region
// and the request id.
type Error struct {
	Status    int    // the HTTP status
	Code      string // "NoSuchKey", "SignatureDoesNotMatch", "SlowDown", ...
	Message   string
	Region    string // the bucket's region, when S3 names it (a wrong-region answer)
	RequestID string
}

func (e *Error) Error() string {
	s := "S3 " + e.Code
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Region != "" {
		s += " (the bucket is in region " + e.Region + "; give it with --s3-region or AWS_REGION)"
	}
	if credentialCodes[e.Code] {
		s += " (check the access key and secret: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE's entry in the shared credentials file)"
	}
	if e.RequestID != "" {
		s += " [request id " + e.RequestID + "]"
	}
	return s
}

func (e *Error) Is(target error) bool {
	switch target {
	case ErrCredentials:
		return credentialCodes[e.Code]
	case ErrNotFound:
		return notFoundCodes[e.Code] || e.Status == http.StatusNotFound && !credentialCodes[e.Code]
	}
	return false
}

// errorBody is the part of S3's XML error body that is shown.
type errorBody struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Region    string   `xml:"Region"`
	RequestID string   `xml:"RequestId"`
}

// describeError reads S3's XML error body (its first 4 KiB, as remote
// passes it) into an *Error, for remote.Options.DescribeError. An answer
// without one (a HEAD's, a proxy's error page) gives an Error with the
// status alone when that still says something, else nil.
func describeError(status int, header http.Header, body []byte) error {
	var eb errorBody
	if err := xml.Unmarshal(body, &eb); err != nil || eb.Code == "" {
		if status == http.StatusNotFound {
			return &Error{Status: status, Code: "NotFound", Message: "no such bucket or key"}
		}
		return nil
	}
	e := &Error{
		Status:    status,
		Code:      printable(eb.Code, 64),
		Message:   printable(eb.Message, 300),
		Region:    printable(eb.Region, 64),
		RequestID: printable(eb.RequestID, 128),
	}
	if e.Region == "" && status == http.StatusMovedPermanently {
		e.Region = printable(header.Get("X-Amz-Bucket-Region"), 64)
	}
	return e
}

// printable is text from a server as it may be shown: cut short, and
// quoted when it has anything but printable ASCII, so a hostile server can
// neither flood nor forge the log.
func printable(s string, max int) string {
	cut := ""
	if len(s) > max {
		s, cut = s[:max], "…"
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return strconv.Quote(s) + cut
		}
	}
	return s + cut
}

// sdkError wraps an error of an SDK call (HeadBucket, ListObjectsV2) in
// the package's sentinels, by its S3 error code.
func sdkError(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch code := ae.ErrorCode(); {
		case credentialCodes[code]:
			return fmt.Errorf("%w: %w", ErrCredentials, err)
		case notFoundCodes[code]:
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		}
	}
	return err
}
