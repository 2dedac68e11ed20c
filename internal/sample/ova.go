package sample

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Disk is a disk image file of an appliance.
type Disk struct {
	File     string // member name in the OVA, e.g. "disk1.vmdk"
	Path     string // host file holding the image bytes
	Capacity int64  // virtual size in bytes
	Format   string // ovf:format URI
}

// Appliance describes an OVA to write.
type Appliance struct {
	Name  string // base name of the descriptor and manifest
	Disks []Disk
}

// StreamOptimized is the ovf:format URI of a streamOptimized VMDK.
const StreamOptimized = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"

// WriteOVA writes the appliance as an OVA in the layout ovftool uses: the
// descriptor first, then the manifest (SHA256 digests of every other
// file), then the disks in descriptor order.
func WriteOVA(path string, a Appliance) error {
	desc := []byte(Descriptor(a))
	sums := []string{fmt.Sprintf("SHA256(%s.ovf)= %s\n", a.Name, sha256Hex(desc))}
	for _, d := range a.Disks {
		sum, err := sha256File(d.Path)
		if err != nil {
			return err
		}
		sums = append(sums, fmt.Sprintf("SHA256(%s)= %s\n", d.File, sum))
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer out.Close()
	tw := tar.NewWriter(out)
	mtime := time.Now().Truncate(time.Second)
	add := func(name string, size int64, r io.Reader) error {
		h := &tar.Header{Name: name, Mode: 0o644, Size: size, ModTime: mtime, Typeflag: tar.TypeReg,
			Uname: "someone", Gname: "someone"}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := io.Copy(tw, r)
		return err
	}
	if err := add(a.Name+".ovf", int64(len(desc)), strings.NewReader(string(desc))); err != nil {
		return err
	}
	mf := strings.Join(sums, "")
	if err := add(a.Name+".mf", int64(len(mf)), strings.NewReader(mf)); err != nil {
		return err
	}
	for _, d := range a.Disks {
		f, err := os.Open(d.Path)
		if err != nil {
			return err
		}
		st, _ := f.Stat()
		err = add(d.File, st.Size(), f)
		f.Close()
		if err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return out.Close()
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func sha256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Descriptor returns an OVF 1.0 descriptor for the appliance: one virtual
// system with two CPUs, 2 GiB of memory, a SCSI controller holding the
// disks, and one NIC.
func Descriptor(a Appliance) string {
	var refs, disks, items strings.Builder
	for i, d := range a.Disks {
		st, _ := os.Stat(d.Path)
		size := int64(0)
		if st != nil {
			size = st.Size()
		}
		fmt.Fprintf(&refs, "    <File ovf:href=\"%s\" ovf:id=\"file%d\" ovf:size=\"%d\"/>\n", d.File, i+1, size)
		fmt.Fprintf(&disks, "    <Disk ovf:capacity=\"%d\" ovf:capacityAllocationUnits=\"byte\" ovf:diskId=\"vmdisk%d\" ovf:fileRef=\"file%d\" ovf:format=\"%s\"/>\n",
			d.Capacity, i+1, i+1, d.Format)
		fmt.Fprintf(&items, `      <Item>
        <rasd:AddressOnParent>%d</rasd:AddressOnParent>
        <rasd:ElementName>Hard Disk %d</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk%d</rasd:HostResource>
        <rasd:InstanceID>%d</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
`, i, i+1, i+1, 10+i)
	}
	return fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<!-- Sample appliance written by ovfmount's internal/sample package -->
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
    xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
    xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData">
  <References>
%s  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
%s  </DiskSection>
  <NetworkSection>
    <Info>The list of logical networks</Info>
    <Network ovf:name="VM Network">
      <Description>The VM Network network</Description>
    </Network>
  </NetworkSection>
  <VirtualSystem ovf:id="%s">
    <Info>A virtual machine</Info>
    <Name>%s</Name>
    <ProductSection>
      <Info>Information about the installed software</Info>
      <Product>ovfmount sample appliance</Product>
      <Vendor>ovfmount</Vendor>
      <Version>1.0</Version>
    </ProductSection>
    <OperatingSystemSection ovf:id="101">
      <Info>The kind of installed guest operating system</Info>
      <Description>Linux (64-bit)</Description>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemType>vmx-13</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:ElementName>2 virtual CPU(s)</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>2</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:ElementName>2048MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>2048</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:ElementName>SCSI Controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>lsilogic</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
%s      <Item>
        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Connection>VM Network</rasd:Connection>
        <rasd:ElementName>Network adapter 1</rasd:ElementName>
        <rasd:InstanceID>20</rasd:InstanceID>
        <rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>
        <rasd:ResourceType>10</rasd:ResourceType>
      </Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
`, refs.String(), disks.String(), a.Name, a.Name, items.String())
}
