# onecloud: the two commands of the README, and the steps they are made of.
# Everything runs as root on Debian 12 and installs what it needs by itself.

SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)
# Downloads (kernel package, tools) are cached here so that a second run fetches nothing.
export ONECLOUD_CACHE ?= /var/cache/onecloud
OUT := $(CURDIR)/out
IMAGE := $(OUT)/image
TOOLS := $(ONECLOUD_CACHE)/bin
STATICCHECK_VERSION := v0.8.2

# Debian packages the build and the QEMU tests use; installed only when missing.
DEBS := qemu-system-x86 qemu-utils swtpm swtpm-tools ovmf ipxe-qemu cpio dnsmasq-base iproute2 ca-certificates kea-admin nginx-light ipxe unifont

# Every package but the QEMU proving ground, which needs the built image.
UNIT_PKGS = $$(go list ./... | grep -v /qemu-tests)

.PHONY: all demo test deps debs gomods tools vet staticcheck unit image qemu-tests bench bench-boot bench-cluster clean

all: image

## make demo: build the image, start a server node (noded server: the cluster of one and the boot server) on a lab network, PXE-boot a terminal from it in QEMU that attests with its TPM and shows Ready in occtl nodes, its serial console on this terminal.
## DEMO_FLAGS=-until-ready stops once the box is ready (a check without a terminal).
demo: deps image
	go run ./qemu-tests/cmd/demo -image $(IMAGE) $(DEMO_FLAGS)

## make test: vet, staticcheck, unit tests with -race, the image, then the QEMU tests.
test: deps vet staticcheck unit image qemu-tests
	@echo "make test: all passed"

deps: debs gomods tools

debs:
	@if [ "$$(id -u)" != 0 ]; then echo "make: run as root (QEMU lab networks need network namespaces)"; exit 1; fi
	@missing=""; for p in $(DEBS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
			|| { echo "apt-get install$$missing failed"; exit 1; }; \
	else echo "Debian packages: all present"; fi

gomods:
	@go mod download && echo "Go modules: downloaded"

tools: $(TOOLS)/staticcheck-$(STATICCHECK_VERSION)

$(TOOLS)/staticcheck-$(STATICCHECK_VERSION):
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@touch $@

vet:
	go vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi

staticcheck: tools
	$(TOOLS)/staticcheck ./...

unit:
	go test -race -count=1 $(UNIT_PKGS)

image:
	go run ./image-builder/cmd/image-builder -o $(IMAGE)

qemu-tests: image
	ONECLOUD_IMAGE=$(IMAGE) go test -count=1 -timeout 40m ./qemu-tests/...

## make bench: image build time (cold and warm), sizes, and boot-to-ready against a bare u-root image, one table.
## BENCH_FLAGS=-skip-cold leaves out the cold build (about a minute or two).
bench: deps
	go run ./qemu-tests/cmd/bench $(BENCH_FLAGS)

## make bench-boot: bootstrapd against dnsmasq and nginx (DHCP, HTTP, TFTP, a boot storm) on a lab network, one table.
## BENCH_BOOT_FLAGS=-quick is a smoke run of under a minute; -only dhcp|http|tftp|storm runs one part.
bench-boot: deps image
	go run ./bootstrap/cmd/bootbench $(BENCH_BOOT_FLAGS)

## make bench-cluster: attestation round trip (1, 4, 16 swtpm clients), server node join, cluster API latency, one table.
## BENCH_CLUSTER_FLAGS=-quick is a smoke run of a few seconds.
bench-cluster: deps
	go run ./noded/cmd/clusterbench $(BENCH_CLUSTER_FLAGS)

clean:
	rm -rf $(OUT)
