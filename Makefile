# ovfmount: build, test, demo and benchmark targets.
#
#   make build    build bin/ovfmount
#   make demo     mount a generated sample appliance and show it
#   make test     every test, race detector on (installs what it needs as root)
#   make bench    ovfmount beside dd, archivemount and friends, with ratios
#   make fuzz     run every fuzz target for FUZZTIME each (default 1m; new inputs
#                 are minimised for 5 s at most, or large filesystem seeds starve
#                 the fuzzer)
#   make stress   32 readers against a mounted appliance for STRESS_SECONDS (default 300)
#   make lint     gofmt and go vet
#   make install  copy bin/ovfmount to $(PREFIX)/bin (mount -t fuse.ovfmount finds it there)
#
# Where libdeflate-dev and a C compiler are installed (make deps as root
# installs them), Go builds with -tags=libdeflate: VMDK and QCOW2 units are
# then inflated by libdeflate, linked statically, 2.5-4x faster (64 KiB grains, on two 2-core VMs).
# Where liblzma-dev is too, with -tags=liblzma: .ova.xz blocks are decoded
# by liblzma, linked statically, instead of the Go decoder.
GO       ?= go
PREFIX   ?= /usr/local
BIN      := bin/ovfmount
VERSION  := $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
# -w leaves out the DWARF debugging data (panics keep their stack traces,
# perf its symbols): a smaller binary starts faster, and a background mount
# starts it twice. `ovfmount version` took 14-16 ms instead of 18-22 here.
LDFLAGS  := -w -X main.version=$(VERSION)
FUZZTIME ?= 1m
STRESS_SECONDS ?= 300

# Debian packages the tests use as oracles and tools, by the command they provide.
TEST_TOOLS  := fusermount3:fuse3 qemu-img:qemu-utils mkfs.ext4:e2fsprogs openssl:openssl tar:tar gzip:gzip pigz:pigz nginx:nginx \
               sfdisk:fdisk sgdisk:gdisk lvcreate:lvm2 mkfs.xfs:xfsprogs mkfs.ntfs:ntfs-3g mkfs.vfat:dosfstools \
               mcopy:mtools xorriso:xorriso fls:sleuthkit setfattr:attr hivexregedit:libwin-hivex-perl hivexml:libhivex-bin nbdinfo:libnbd-bin \
               zip:zip unzip:unzip xz:xz-utils zstd:zstd
BENCH_TOOLS := archivemount:archivemount vmdkmount:libvmdk-utils
# Optional: what -tags=libdeflate and -tags=liblzma need, by a command or an absolute path.
FAST_INFLATE := /usr/include/libdeflate.h:libdeflate-dev /usr/include/lzma.h:liblzma-dev gcc:gcc /usr/include/stdlib.h:libc6-dev

# Shell snippets, so that the choice is made when a recipe runs, after deps
# may have installed the -dev packages: have_libdeflate and have_liblzma
# test whether -tags=libdeflate or -tags=liblzma would build the C code;
# goflags exports GOFLAGS for the rest of the recipe's shell line (the
# user's, plus the tags that would build) and says which decoders that is.
have_cgo = [ "$$($(GO) env CGO_ENABLED)" = 1 ]
have_libdeflate = [ -e /usr/include/libdeflate.h ] && $(have_cgo)
have_liblzma = [ -e /usr/include/lzma.h ] && $(have_cgo)
define goflags
tags=; \
if $(have_libdeflate); then tags=libdeflate; echo "inflater: libdeflate"; \
else echo "inflater: pure Go; for libdeflate's, 2.5-4x faster: apt-get install libdeflate-dev gcc (make deps does, as root)"; fi; \
if $(have_liblzma); then tags=$${tags:+$$tags,}liblzma; echo "xz decoder: liblzma"; \
else echo "xz decoder: pure Go; for liblzma's, 1.8x faster: apt-get install liblzma-dev gcc (make deps does, as root)"; fi; \
if [ -n "$$tags" ]; then export GOFLAGS="$$($(GO) env GOFLAGS) -tags=$$tags"; echo "GOFLAGS=$$GOFLAGS"; fi
endef

.PHONY: build test demo bench fuzz stress lint install deps bench-deps clean versitygw

# versitygw, an S3 server the remote/s3 tests and the bench read from, is
# built once from the Go module proxy into a cache folder that survives
# clean, and reused while present.
VERSITYGW_VERSION := v1.8.0
VERSITYGW := $(HOME)/.cache/ovfmount-tools/versitygw-$(VERSITYGW_VERSION)/versitygw
versitygw: $(VERSITYGW)
$(VERSITYGW):
	GOBIN=$(dir $(VERSITYGW)) $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)

build:
	@$(goflags); set -x; $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/ovfmount

# deps installs the test tools that are missing, and what the libdeflate
# inflater and the liblzma decoder need: with apt-get when run as root. Otherwise it names the
# missing test tools and stops; the libdeflate and liblzma ones are optional.
deps:
	@$(call install_tools,$(TEST_TOOLS),$(FAST_INFLATE))

bench-deps:
	@$(call install_tools,$(TEST_TOOLS) $(BENCH_TOOLS),$(FAST_INFLATE))

# install_tools takes required and optional cmd:package pairs; a cmd that
# starts with / is a file that must exist.
define install_tools
have() { case $$1 in /*) [ -e $$1 ];; *) command -v $$1 >/dev/null 2>&1 || [ -x /usr/sbin/$$1 ] || [ -x /sbin/$$1 ];; esac; }; \
missing=""; for t in $(1); do have $${t%%:*} || missing="$$missing $${t#*:}"; done; \
optional=""; for t in $(2); do have $${t%%:*} || optional="$$optional $${t#*:}"; done; \
if [ -n "$$missing$$optional" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
  echo "installing:$$missing$$optional"; \
  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing$$optional >/dev/null || exit 1; \
elif [ -n "$$missing" ]; then \
  echo "missing Debian packages:$$missing"; \
  echo "install them with: sudo apt-get install$$missing$$optional   (or run make as root)"; exit 1; \
fi
endef

# The FUSE tests fail rather than skip where /dev/fuse exists, and the
# oracle tests fail rather than skip, so CI can never pass by skipping.
# GOFLAGS carries the tags to the integration tests' go build too.
test: deps lint versitygw
	@$(goflags); \
	echo "go test -race ./... (FUSE tests: $$([ -e /dev/fuse ] && echo required || echo skipped, no /dev/fuse))"; set -x; \
	OVFMOUNT_REQUIRE_TOOLS=1 OVFMOUNT_REQUIRE_FUSE=$$([ -e /dev/fuse ] && echo 1 || echo 0) OVFMOUNT_VERSITYGW=$(VERSITYGW) \
		$(GO) test -race -count=1 -timeout 14m ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@if $(have_libdeflate); then set -x; $(GO) vet -tags=libdeflate ./vdisk/codec; fi
	@if $(have_liblzma); then set -x; $(GO) vet -tags=liblzma ./xzindex; fi

demo: build
	@$(call install_tools,fusermount3:fuse3 mkfs.ext4:e2fsprogs getfattr:attr qemu-img:qemu-utils)
	@set -e; d=$$(mktemp -d /tmp/ovfmount-demo.XXXXXX); \
	trap 'fusermount3 -u "$$d/mnt" 2>/dev/null || true; rm -rf "$$d"' EXIT; \
	mkdir "$$d/mnt"; cd "$$d"; \
	echo "== building a sample appliance (descriptor, SHA256 manifest, streamOptimized disk)"; \
	$(GO) run -C $(CURDIR) ./internal/cmd/mksample "$$d/appliance.ova"; \
	echo; echo "\$$ tar -tvf appliance.ova"; tar -tvf appliance.ova; \
	echo; echo "\$$ ovfmount appliance.ova mnt"; $(CURDIR)/$(BIN) --log-level=warn appliance.ova mnt; \
	echo; echo "\$$ ls -l mnt"; ls -l mnt; \
	echo; echo "\$$ head -n 12 mnt/appliance.ovf"; head -n 12 mnt/appliance.ovf; \
	echo; echo "\$$ cat mnt/appliance.mf"; cat mnt/appliance.mf; \
	echo; echo "\$$ (cd mnt && sha256sum -c appliance.mf)"; (cd mnt && sha256sum -c appliance.mf); \
	echo; echo "\$$ ovfmount info appliance.ova"; $(CURDIR)/$(BIN) info appliance.ova; \
	echo; echo "\$$ ls -l mnt/disks        # the VMDK, decoded to a flat disk, and its partition"; ls -l mnt/disks; \
	echo; echo "\$$ partx --show mnt/disks/disk1.vmdk.raw"; partx --show mnt/disks/disk1.vmdk.raw; \
	echo; echo "\$$ ls -ln mnt/files/disk1.vmdk.p1     # the ext4 inside, read by ovfmount, not the kernel"; ls -ln mnt/files/disk1.vmdk.p1; \
	echo; echo "\$$ cat mnt/files/disk1.vmdk.p1/etc/os-release | head -n 3"; head -n 3 mnt/files/disk1.vmdk.p1/etc/os-release; \
	echo; echo "\$$ getfattr -d mnt/files/disk1.vmdk.p1/etc/hostname    # checked like the disk"; getfattr -d mnt/files/disk1.vmdk.p1/etc/hostname; \
	echo; echo "\$$ debugfs -R 'ls -l /' mnt/disks/disk1.vmdk.p1    # tools get the partition without offsets"; \
	debugfs -R 'ls -l /' mnt/disks/disk1.vmdk.p1 2>/dev/null; \
	echo; echo "\$$ fusermount3 -u mnt"; fusermount3 -u mnt; echo "unmounted"; \
	echo; echo "\$$ ovfmount --overlay app1 appliance.ova mnt     # the disk takes writes; the archive stays as it is"; \
	$(CURDIR)/$(BIN) --log-level=warn --overlay app1 appliance.ova mnt; sum=$$(sha256sum < appliance.ova); \
	echo "\$$ printf 'written by the guest' | dd of=mnt/disks/disk1.vmdk.raw bs=1 seek=1048576 conv=notrunc,fsync"; \
	printf 'written by the guest' | dd of=mnt/disks/disk1.vmdk.raw bs=1 seek=1048576 conv=notrunc,fsync 2>/dev/null; \
	echo "\$$ getfattr -n user.ovfmount.verify mnt/disks/disk1.vmdk.raw"; getfattr -n user.ovfmount.verify mnt/disks/disk1.vmdk.raw; \
	fusermount3 -u mnt; echo; echo "\$$ ovfmount overlay status app1"; $(CURDIR)/$(BIN) overlay status app1; \
	echo; echo "\$$ ovfmount overlay export app1 disk1.vmdk disk1-as-left.qcow2"; $(CURDIR)/$(BIN) overlay export app1 disk1.vmdk disk1-as-left.qcow2; \
	[ "$$sum" = "$$(sha256sum < appliance.ova)" ] && echo "(appliance.ova is unchanged: same SHA-256)"; \
	echo; echo "\$$ mkdir lib && cp appliance.ova lib/appliance-1.0.ova && gzip -c appliance.ova > lib/appliance-1.1.ova.gz"; \
	mkdir lib && cp appliance.ova lib/appliance-1.0.ova && gzip -c appliance.ova > lib/appliance-1.1.ova.gz; \
	echo "\$$ ovfmount lib mnt     # a folder of archives: one folder each, opened when first looked into"; \
	$(CURDIR)/$(BIN) --log-level=warn lib mnt; ls -l mnt; \
	echo "\$$ getfattr -d mnt/appliance-1.1"; getfattr -d mnt/appliance-1.1; \
	echo "\$$ ls mnt/appliance-1.1/disks     # the .ova.gz, read through a seek index"; ls mnt/appliance-1.1/disks; \
	echo "\$$ getfattr -n user.ovfmount.state mnt/appliance-1.1"; getfattr -n user.ovfmount.state mnt/appliance-1.1; \
	fusermount3 -u mnt; \
	echo; echo "\$$ ovfmount verify appliance.ova      # reads every byte, prints the digests it computed"; $(CURDIR)/$(BIN) verify appliance.ova; \
	echo; echo "\$$ tar -xf appliance.ova disk1.vmdk && ovfmount disk1.vmdk mnt   # a loose disk image is a one-disk package"; \
	tar -xf appliance.ova disk1.vmdk; $(CURDIR)/$(BIN) --log-level=warn disk1.vmdk mnt; ls -l mnt mnt/disks; \
	fusermount3 -u mnt; \
	echo; echo "\$$ qemu-img create -f qcow2 -b disk1.vmdk -F vmdk snap.qcow2 && qemu-io -c 'write -P 0x61 1M 64k' snap.qcow2"; \
	qemu-img create -q -f qcow2 -b disk1.vmdk -F vmdk snap.qcow2; qemu-io -c 'write -P 0x61 1M 64k' snap.qcow2 >/dev/null; \
	echo "\$$ tar -cf snapshot.ova disk1.vmdk snap.qcow2 && ovfmount snapshot.ova mnt   # a snapshot chain: the overlay reads through its parent"; \
	tar -cf snapshot.ova disk1.vmdk snap.qcow2; $(CURDIR)/$(BIN) --log-level=error snapshot.ova mnt; ls -l mnt/disks; \
	echo "\$$ ovfmount info snapshot.ova | grep chain"; $(CURDIR)/$(BIN) info snapshot.ova 2>/dev/null | grep chain; \
	echo "\$$ ovfmount map snapshot.ova snap.qcow2 | head -n 6     # which layer, which file, which offset"; \
	$(CURDIR)/$(BIN) map snapshot.ova snap.qcow2 2>/dev/null | head -n 6; \
	fusermount3 -u mnt; \
	echo; echo "\$$ ovfmount check appliance.ova     # would vSphere, VirtualBox, virt-v2v, Proxmox, oVirt import it?"; \
	$(CURDIR)/$(BIN) check appliance.ova || echo "(exit $$?: a target would refuse it)"; \
	echo; echo "\$$ ovfmount --audit-log reads.log appliance.ova mnt && head -c 4096 mnt/appliance.ovf >/dev/null   # every byte served, logged"; \
	$(CURDIR)/$(BIN) --log-level=error --audit-log reads.log appliance.ova mnt; head -c 4096 mnt/appliance.ovf >/dev/null; \
	dd if=mnt/disks/disk1.vmdk.raw of=/dev/null bs=64k skip=16 count=4 2>/dev/null; fusermount3 -u mnt; \
	echo "\$$ ovfmount audit verify reads.log     # the log is a hash chain: an edited or removed line is found"; \
	$(CURDIR)/$(BIN) audit verify reads.log; \
	echo; echo "\$$ ovfmount info /etc/hostname"; $(CURDIR)/$(BIN) info /etc/hostname || echo "(exit $$?: not a package, named as what it is)"

bench: bench-deps build versitygw
	OVFMOUNT_VERSITYGW=$(VERSITYGW) $(GO) run ./internal/cmd/bench -bin $(CURDIR)/$(BIN)

fuzz:
	@$(goflags); for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg || exit 1; \
	  done; \
	done

# stress is the long run of the integration stress test (make test runs it
# for a few seconds): every read checked against an oracle, memory bounded.
stress: deps
	@$(goflags); set -x; OVFMOUNT_REQUIRE_TOOLS=1 OVFMOUNT_REQUIRE_FUSE=1 OVFMOUNT_STRESS_SECONDS=$(STRESS_SECONDS) \
		$(GO) test -count=1 -timeout 0 -run '^TestStress$$' -v ./integration

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/ovfmount

clean:
	rm -rf bin
