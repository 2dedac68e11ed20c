package s3

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// A listing is recursive, paged past S3's 1,000 keys a page, complete,
// and leaves out what is beside the prefix and folder markers.
func TestListPrefix(t *testing.T) {
	s := startS3(t)
	ctx := context.Background()
	const n = 1000
	keys := make(chan string, n)
	want := map[string]int{}
	for i := range n {
		k := fmt.Sprintf("lab/vm%04d.ova", i)
		if i%10 == 0 {
			k = fmt.Sprintf("lab/deep/er/vm%04d.ova", i)
		}
		want[k] = i % 97
		keys <- k
	}
	close(keys)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			for k := range keys {
				if _, err := s.PutObject(ctx, testBucket, k, make([]byte, want[k])); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("put %d objects in %v", n, time.Since(start).Round(time.Millisecond))
	put(t, s, "labx/beside.ova", []byte("x"))
	put(t, s, "top.ova", []byte("x"))
	put(t, s, "lab/folder/", nil)

	start = time.Now()
	objs, err := List(ctx, "s3://"+testBucket+"/lab/", testOptions(s.Endpoint))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("listed %d objects in %v", len(objs), time.Since(start).Round(time.Millisecond))
	if len(objs) != n {
		t.Fatalf("%d objects listed, want %d", len(objs), n)
	}
	for i, o := range objs {
		size, ok := want[o.Key]
		switch {
		case !ok:
			t.Fatalf("listed %q, which is not under the prefix", o.Key)
		case o.Size != int64(size):
			t.Errorf("%s: size %d, want %d", o.Key, o.Size, size)
		case !strings.HasPrefix(o.ETag, `"`) || o.LastModified.IsZero():
			t.Errorf("%s: ETag %q, LastModified %v", o.Key, o.ETag, o.LastModified)
		case i > 0 && objs[i-1].Key >= o.Key:
			t.Errorf("not in key order: %q before %q", objs[i-1].Key, o.Key)
		}
		delete(want, o.Key)
	}
	if o := objs[0]; o.URL(testBucket) != "s3://"+testBucket+"/"+o.Key {
		t.Errorf("URL = %q", o.URL(testBucket))
	}

	all, err := List(ctx, "s3://"+testBucket, testOptions(s.Endpoint))
	if err != nil || len(all) != n+2 {
		t.Fatalf("the bucket root: %d objects, %v; want %d", len(all), err, n+2)
	}
	if _, err := list(ctx, "s3://"+testBucket+"/lab/", testOptions(s.Endpoint), n-1); !errors.Is(err, ErrTooManyKeys) {
		t.Errorf("past the limit: %v, want ErrTooManyKeys", err)
	}
	if _, err := List(ctx, "s3://nosuchbucket/", testOptions(s.Endpoint)); !errors.Is(err, ErrNotFound) {
		t.Errorf("a missing bucket: %v, want ErrNotFound", err)
	}
	if _, err := List(ctx, "s3://"+testBucket+"/lab", testOptions(s.Endpoint)); err == nil {
		t.Error("a prefix without its trailing slash was listed")
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	if _, err := List(ctx, "s3://"+testBucket+"/lab/", testOptions(s.Endpoint)); !errors.Is(err, ErrCredentials) {
		t.Errorf("a wrong secret: %v, want ErrCredentials", err)
	}
}
