package main

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/remote"
)

func TestParseMountArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want mountConfig
		err  string
	}{
		{args: []string{"a.ova", "/mnt"},
			want: mountConfig{archive: "a.ova", mountpoint: "/mnt", uid: -1, gid: -1, logLevel: "info", logFormat: "auto"}},
		// mount.fuse3 puts -o after the positional arguments, and adds rw,dev,suid.
		{args: []string{"a.ova", "/mnt", "-o", "rw,allow_other,uid=1000,gid=100,dev,suid"},
			want: mountConfig{archive: "a.ova", mountpoint: "/mnt", allowOther: true, uid: 1000, gid: 100, logLevel: "info", logFormat: "auto"}},
		{args: []string{"-f", "-o", "default_permissions", "-o", "fsname=app,nonempty,noexec,x-systemd.automount", "a.ova", "m"},
			want: mountConfig{archive: "a.ova", mountpoint: "m", foreground: true, defaultPermissions: true, fsname: "app", nonempty: true,
				kernelOptions: []string{"noexec"}, uid: -1, gid: -1, logLevel: "info", logFormat: "auto"}},
		{args: []string{"-o", "log_file=/var/log/x,log_level=debug,log_format=json", "a", "m"},
			want: mountConfig{archive: "a", mountpoint: "m", logFile: "/var/log/x", uid: -1, gid: -1, logLevel: "debug", logFormat: "json"}},
		{args: []string{"--debug-fuse", "a", "m"},
			want: mountConfig{archive: "a", mountpoint: "m", debugFUSE: true, uid: -1, gid: -1, logLevel: "debug", logFormat: "auto"}},
		{args: []string{"-o", "verify=strict,allow_unlisted,require_trusted_signer,ca=/etc/ca.pem,cache_dir=/var/cache/o", "a", "m"},
			want: mountConfig{archive: "a", mountpoint: "m", uid: -1, gid: -1, logLevel: "info", logFormat: "auto",
				verify: verify{mode: "strict", allowUnlisted: true, requireTrustedSigner: true, caFile: "/etc/ca.pem", cacheDir: "/var/cache/o"}}},
		{args: []string{"--verify=off", "--cache-dir=", "a", "m"},
			want: mountConfig{archive: "a", mountpoint: "m", uid: -1, gid: -1, logLevel: "info", logFormat: "auto",
				verify: verify{mode: "off", cacheDir: ""}}},
		// Header values hold commas, so headers are flags only, never -o.
		{args: []string{"-H", "Authorization: Bearer a,b", "--header=X-Key: 1", "-o", "netrc=/n,remote_cache=2G,timeout=5s", "https://h/a.ova", "m"},
			want: mountConfig{archive: "https://h/a.ova", mountpoint: "m", uid: -1, gid: -1, logLevel: "info", logFormat: "auto",
				verify: verify{mode: "lazy", cacheDir: defaultCacheDir(), net: remoteFlags{
					headers: []string{"Authorization: Bearer a,b", "X-Key: 1"}, netrc: "/n", cacheSize: 2 << 30, timeout: 5 * time.Second}}}},
		// The flag, and libfuse's and sshfs's spelling of the option.
		{args: []string{"--direct-io", "a", "m"},
			want: mountConfig{archive: "a", mountpoint: "m", directIO: true, uid: -1, gid: -1, logLevel: "info", logFormat: "auto"}},
		{args: []string{"a", "m", "-o", "ro,direct_io"},
			want: mountConfig{archive: "a", mountpoint: "m", directIO: true, uid: -1, gid: -1, logLevel: "info", logFormat: "auto"}},
		// The audit log, as a flag and as fstab gives it.
		{args: []string{"--audit-log", "/cases/1/reads.log", "a", "m"},
			want: mountConfig{archive: "a", mountpoint: "m", auditLog: "/cases/1/reads.log", uid: -1, gid: -1, logLevel: "info", logFormat: "auto"}},
		{args: []string{"a", "m", "-o", "ro,audit_log=/cases/1/reads.log"},
			want: mountConfig{archive: "a", mountpoint: "m", auditLog: "/cases/1/reads.log", uid: -1, gid: -1, logLevel: "info", logFormat: "auto"}},
		// The S3 flags and --connections, as fstab gives them.
		{args: []string{"-o", "connections=8,s3_endpoint=http://127.0.0.1:7070,s3_region=eu-west-1,s3_profile=lab,s3_addressing=path", "s3://b/a.ova", "m"},
			want: mountConfig{archive: "s3://b/a.ova", mountpoint: "m", uid: -1, gid: -1, logLevel: "info", logFormat: "auto",
				verify: verify{mode: "lazy", cacheDir: defaultCacheDir(),
					net: remoteFlags{cacheSize: remote.DefaultDiskBudget, timeout: remote.DefaultRequestTimeout, connections: 8},
					s3:  s3Flags{endpoint: "http://127.0.0.1:7070", region: "eu-west-1", profile: "lab", addressing: "path"}}}},
		{args: []string{"-o", "connections=0", "a", "m"}, err: "must be a number from 1 to 64"},
		{args: []string{"-o", "uid=-1", "a", "m"}, err: "needs a non-negative number"},
		{args: []string{"-o", "uid", "a", "m"}, err: "needs a non-negative number"},
		{args: []string{"-o", "frobnicate", "a", "m"}, err: `unknown mount option "frobnicate"`},
		{args: []string{"a"}, err: "need ARCHIVE and MOUNTPOINT (several ARCHIVEs make a library), got 1"},
		// Several archives make a library; the last argument is the mountpoint.
		{args: []string{"a", "b", "c"},
			want: mountConfig{archive: "a", archives: []string{"a", "b"}, mountpoint: "c", uid: -1, gid: -1, logLevel: "info", logFormat: "auto"}},
		{args: []string{"-o", "disk_chain=off", "a", "m"},
			want: mountConfig{archive: "a", mountpoint: "m", uid: -1, gid: -1, logLevel: "info", logFormat: "auto",
				verify: verify{mode: "lazy", cacheDir: defaultCacheDir(), diskChain: "off"}}},
		{args: []string{"--bogus", "a", "b"}, err: "unknown flag: --bogus"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			cfg, _, err := parseMountArgs(tc.args)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// The cases that do not set them expect the defaults.
			if reflect.DeepEqual(tc.want.verify, verify{}) {
				tc.want.verify = verify{mode: "lazy", cacheDir: defaultCacheDir()}
			}
			if reflect.DeepEqual(tc.want.verify.net, remoteFlags{}) {
				tc.want.verify.net = remoteFlags{cacheSize: remote.DefaultDiskBudget, timeout: remote.DefaultRequestTimeout}
			}
			if tc.want.verify.diskChain == "" {
				tc.want.verify.diskChain = "on"
			}
			if tc.want.verify.s3 == (s3Flags{}) {
				tc.want.verify.s3 = s3Flags{addressing: "auto"}
			}
			if tc.want.archives == nil {
				tc.want.archives = []string{tc.want.archive}
			}
			if !reflect.DeepEqual(*cfg, tc.want) {
				t.Errorf("got  %+v\nwant %+v", *cfg, tc.want)
			}
		})
	}
}

func TestRunUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"--help"}, exitOK, "Exit codes:"},
		{[]string{"help"}, exitOK, "Mount options"},
		{[]string{"version"}, exitOK, "ovfmount "},
		{[]string{"-f"}, exitUsage, "need ARCHIVE and MOUNTPOINT"},
		{[]string{"-f", "--log-level=loud", "a", "b"}, exitUsage, "--log-level must be"},
		{[]string{"-f", "/nonexistent.ova", "/tmp"}, exitUsage, "/nonexistent.ova: no such file"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stdout.String()+stderr.String(), tc.out) {
			t.Errorf("%v: exit %d, output %q; want %d and %q", tc.args, code, stdout.String()+stderr.String(), tc.code, tc.out)
		}
	}
}

func TestCodeOf(t *testing.T) {
	if codeOf(nil) != exitOK || codeOf(errors.New("x")) != exitInternal || codeOf(fail(exitMountpoint, "m")) != exitMountpoint {
		t.Error("codeOf misclassifies")
	}
}
