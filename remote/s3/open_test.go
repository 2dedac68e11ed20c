package s3

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/remote"
)

// An object reads byte-exact, whole and in pieces, with a key whose
// characters all need escaping in the signed path.
func TestOpenReadsObject(t *testing.T) {
	s := startS3(t)
	data := testData(3<<20+12345, 1)
	for _, key := range []string{"appliance.ova", "dir/sub dir/a+b=c,d;e@f&g$h!'(x)*~ü.ova"} {
		t.Run(key, func(t *testing.T) {
			etag := put(t, s, key, data)
			f := mustOpen(t, "s3://"+testBucket+"/"+key, testOptions(s.Endpoint))
			if f.Size() != int64(len(data)) {
				t.Fatalf("Size() = %d, want %d", f.Size(), len(data))
			}
			if want := "s3://" + testBucket + "/" + key; f.URL() != want {
				t.Errorf("URL() = %q, want %q", f.URL(), want)
			}
			if id := string(f.Identity()); !strings.Contains(id, etag) {
				t.Errorf("Identity %q does not hold the ETag %s", id, etag)
			}
			got, err := io.ReadAll(io.NewSectionReader(f, 0, f.Size()))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(data) {
				t.Fatal("the object read back differs")
			}
			for _, r := range [][2]int64{{0, 1}, {65535, 2}, {1 << 20, 300000}, {int64(len(data)) - 7, 7}} {
				readCheck(t, f, data, r[0], int(r[1]))
			}
			if _, err := f.ReadAt(make([]byte, 10), int64(len(data))-5); err != io.EOF {
				t.Errorf("a read past the end: %v, want io.EOF", err)
			}
		})
	}
}

// Credentials come from a profile of the shared credentials file, named
// by AWS_PROFILE or by Options.Profile, as the AWS CLI takes them.
func TestCredentialsFromProfile(t *testing.T) {
	s := startS3(t)
	data := testData(100000, 2)
	put(t, s, "p.ova", data)
	_, credFile := isolateAWS(t) // no credentials in the environment now
	creds := "[default]\naws_access_key_id = nobody\naws_secret_access_key = wrong\n\n" +
		"[ovf]\naws_access_key_id = " + s.Access + "\naws_secret_access_key = " + s.Secret + "\n"
	if err := os.WriteFile(credFile, []byte(creds), 0o600); err != nil {
		t.Fatal(err)
	}
	url := "s3://" + testBucket + "/p.ova"

	t.Setenv("AWS_PROFILE", "ovf")
	readCheck(t, mustOpen(t, url, testOptions(s.Endpoint)), data, 0, len(data))

	os.Unsetenv("AWS_PROFILE")
	_, err := Open(context.Background(), url, testOptions(s.Endpoint))
	if !errors.Is(err, ErrCredentials) {
		t.Fatalf("with the default profile's unknown key: %v, want ErrCredentials", err)
	}
	opt := testOptions(s.Endpoint)
	opt.Profile = "ovf"
	readCheck(t, mustOpen(t, url, opt), data, 0, len(data))

	opt.Profile = "nosuchprofile"
	if _, err := Open(context.Background(), url, opt); !errors.Is(err, ErrCredentials) || !strings.Contains(err.Error(), "nosuchprofile") {
		t.Fatalf("a missing profile: %v, want ErrCredentials naming it", err)
	}
}

// Credentials, endpoint and region can come from the environment alone,
// as the AWS CLI takes them (the harness's Env, which the integration
// tests give the ovfmount command); with no region anywhere, HeadBucket
// asks for it.
func TestEndpointFromEnvironment(t *testing.T) {
	s := startS3(t)
	data := testData(70000, 3)
	put(t, s, "e.ova", data)
	isolateAWS(t)
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	var opt Options
	opt.BlockSize = remote.MinBlockSize
	readCheck(t, mustOpen(t, "s3://"+testBucket+"/e.ova", opt), data, 0, len(data))

	os.Unsetenv("AWS_REGION")
	readCheck(t, mustOpen(t, "s3://"+testBucket+"/e.ova", opt), data, 0, len(data))
}

// Wrong credentials fail with ErrCredentials and S3's own code, a missing
// bucket or key with ErrNotFound and its code, and no credentials at all
// with ErrCredentials before any request; none of it shows the secret.
func TestOpenErrors(t *testing.T) {
	s := startS3(t)
	put(t, s, "there.ova", testData(1000, 4))
	url := "s3://" + testBucket + "/there.ova"
	open := func(url string) error {
		f, err := Open(context.Background(), url, testOptions(s.Endpoint))
		if err == nil {
			f.Close()
		}
		return err
	}

	t.Run("wrong secret", func(t *testing.T) {
		t.Setenv("AWS_SECRET_ACCESS_KEY", "not-"+s.Secret)
		err := open(url)
		checkErr(t, err, ErrCredentials, "SignatureDoesNotMatch", s.Secret)
		if !errors.Is(err, remote.ErrAccessDenied) {
			t.Errorf("%v is not also remote.ErrAccessDenied", err)
		}
	})
	t.Run("unknown key", func(t *testing.T) {
		t.Setenv("AWS_ACCESS_KEY_ID", "AKIANOBODY")
		// AWS says InvalidAccessKeyId, Versity XAdminUserNotFound.
		checkErr(t, open(url), ErrCredentials, "access key", s.Secret)
	})
	t.Run("no credentials", func(t *testing.T) {
		isolateAWS(t)
		checkErr(t, open(url), ErrCredentials, "AWS_ACCESS_KEY_ID", s.Secret)
	})
	t.Run("no such bucket", func(t *testing.T) {
		err := open("s3://nosuchbucket/there.ova")
		checkErr(t, err, ErrNotFound, "NoSuchBucket", s.Secret)
		if !errors.Is(err, remote.ErrNotFound) {
			t.Errorf("%v is not also remote.ErrNotFound", err)
		}
	})
	t.Run("no such key", func(t *testing.T) {
		checkErr(t, open("s3://"+testBucket+"/missing.ova"), ErrNotFound, "NoSuchKey", s.Secret)
	})
	t.Run("not an object", func(t *testing.T) {
		for _, u := range []string{"s3://" + testBucket + "/dir/", "s3://" + testBucket, "https://x/y", "s3:///k"} {
			if err := open(u); err == nil {
				t.Errorf("Open(%s) succeeded", u)
			}
		}
	})
}

func checkErr(t *testing.T, err, sentinel error, text, secret string) {
	t.Helper()
	switch {
	case err == nil:
		t.Fatalf("no error, want %v", sentinel)
	case !errors.Is(err, sentinel):
		t.Errorf("error %q is not %v", err, sentinel)
	case !strings.Contains(err.Error(), text):
		t.Errorf("error %q does not say %s", err, text)
	case strings.Contains(err.Error(), secret):
		t.Errorf("error %q shows the secret", err)
	}
	t.Logf("%v", err)
}

// Options.Header may not carry its own authorization.
func TestOpenRefusesAuthorizationHeader(t *testing.T) {
	opt := testOptions("http://127.0.0.1:1")
	opt.Header = map[string][]string{"Authorization": {"Bearer x"}}
	if _, err := Open(context.Background(), "s3://b/k", opt); err == nil {
		t.Fatal("Open with an Authorization header succeeded")
	}
}
