package versitygw

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestStart starts the server, stores an object and reads it back.
func TestStart(t *testing.T) {
	s := Start(t)
	ctx := context.Background()
	if err := s.CreateBucket(ctx, "bucket"); err != nil {
		t.Fatal(err)
	}
	data := []byte("the bytes of an object")
	etag, err := s.PutObject(ctx, "bucket", "dir/object", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(etag) < 3 || etag[0] != '"' {
		t.Errorf("ETag %q is not a quoted strong tag", etag)
	}
	out, err := s.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket"), Key: aws.String("dir/object")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %q, %v; want %q", got, err, data)
	}
}
