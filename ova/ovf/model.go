package ovf

// Envelope is what one OVF descriptor says, reduced to what an operator
// inspecting an appliance and a mount wiring its disks need. Numbers that the
// descriptor leaves out or gets wrong are reported as -1 (sizes) or 0
// (counts), never guessed, and every tolerated deviation is a Warning.
type Envelope struct {
	// Version is the OVF version, "0.9", "1.0", "1.1", "2.0", ..., taken
	// from ovf:version where it agrees with the envelope namespace and
	// from the namespace otherwise; empty when neither says.
	Version   string    `json:"version"`
	Namespace string    `json:"namespace,omitempty"`
	Files     []File    `json:"files"`
	Disks     []Disk    `json:"disks"`
	Networks  []Network `json:"networks"`
	// DeploymentOptions are the Configuration elements of the
	// DeploymentOptionSection, in document order. DefaultConfiguration is
	// the one marked ovf:default, or the first when none is (DSP0243).
	DeploymentOptions    []DeploymentOption `json:"deploymentOptions,omitempty"`
	DefaultConfiguration string             `json:"defaultConfiguration,omitempty"`
	// Systems holds every VirtualSystem, those nested in
	// VirtualSystemCollections included, in document order; each records
	// the collections above it in Path.
	Systems     []VirtualSystem `json:"virtualSystems"`
	Collections []Collection    `json:"collections,omitempty"`
	Warnings    []string        `json:"warnings"`
}

// File is one References/File element: a file the package is made of.
type File struct {
	ID   string `json:"id"`
	Href string `json:"href"`
	// Size is ovf:size as declared, -1 when absent or unusable. Producers
	// often get it wrong; the archive's own size is authoritative.
	Size int64 `json:"size"`
	// Compression is ovf:compression as written ("gzip", "identity", ...);
	// empty when absent.
	Compression string `json:"compression"`
	// ChunkSize is ovf:chunkSize, 0 when the file is not split into
	// href.000000000, href.000000001, ... chunks.
	ChunkSize int64 `json:"chunkSize"`
}

// Disk is one DiskSection/Disk element: a virtual disk, backed by a File or,
// without fileRef, an empty disk the importer is to create.
type Disk struct {
	ID        string `json:"id"`
	FileRef   string `json:"fileRef,omitempty"`
	Format    string `json:"format,omitempty"`
	ParentRef string `json:"parentRef,omitempty"`
	// Capacity is the virtual size in bytes, -1 when it cannot be known
	// (absent, unparsable, an unresolved ${property}, or beyond int64).
	Capacity int64 `json:"capacityBytes"`
	// CapacityRaw and Units are ovf:capacity and
	// ovf:capacityAllocationUnits exactly as written.
	CapacityRaw string `json:"capacityRaw"`
	Units       string `json:"capacityAllocationUnits,omitempty"`
	// PopulatedSize is ovf:populatedSize in bytes, -1 when absent.
	PopulatedSize int64 `json:"populatedSizeBytes"`
}

// DiskFile is a Disk joined with the File that holds its image: what the
// mount exposes as a raw disk view.
type DiskFile struct {
	Disk Disk `json:"disk"`
	File File `json:"file"`
}

// Network is one NetworkSection/Network element.
type Network struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// DeploymentOption is one DeploymentOptionSection/Configuration element.
type DeploymentOption struct {
	ID          string `json:"id"`
	Label       string `json:"label,omitempty"`
	Description string `json:"description,omitempty"`
	Default     bool   `json:"default"`
}

// VirtualSystem is one VirtualSystem (0.9: Content of VirtualSystem_Type).
type VirtualSystem struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// Path lists the ids of the VirtualSystemCollections enclosing this
	// system, outermost first; empty for a top-level system.
	Path []string `json:"path,omitempty"`
	// HardwareFamily is vssd:VirtualSystemType, e.g. "vmx-13" or
	// "virtualbox-2.2" (several space-separated families are common).
	HardwareFamily string `json:"hardwareFamily,omitempty"`
	// CPUs and MemoryBytes summarise the items active in the default
	// deployment configuration (or the unconditional items when there is
	// none); 0 when the descriptor gives no usable value.
	CPUs        int   `json:"cpus"`
	MemoryBytes int64 `json:"memoryBytes"`
	// Configuration is the deployment configuration CPUs and MemoryBytes
	// are for, Envelope.DefaultConfiguration; empty when the descriptor
	// declares no deployment option, and they are for the unconditional
	// items.
	Configuration string `json:"configuration,omitempty"`
	// ByConfiguration gives what each deployment option, in
	// Envelope.DeploymentOptions order, gives this system; nil when the
	// descriptor declares none, or (with a warning) so many options and
	// items that summing each would take too long.
	ByConfiguration []Sizing `json:"byConfiguration,omitempty"`
	OS              OS       `json:"os"`
	Product         Product  `json:"product"`
	// Firmware is VMware's vmw:Config firmware value ("bios", "efi"),
	// empty when the descriptor does not say.
	Firmware    string       `json:"firmware,omitempty"`
	Controllers []Controller `json:"controllers,omitempty"`
	Disks       []Attachment `json:"disks"`
	CDROMs      []Attachment `json:"cdroms,omitempty"`
	NICs        []NIC        `json:"nics"`
	Properties  []Property   `json:"properties,omitempty"`
	EULAs       []string     `json:"eulas,omitempty"`
	Annotation  string       `json:"annotation,omitempty"`
}

// Sizing is the CPUs and memory one deployment configuration gives a
// system, summed over the items active in it as CPUs and MemoryBytes are
// for the default; 0 when the descriptor gives no usable value.
type Sizing struct {
	Configuration string `json:"configuration"`
	CPUs          int    `json:"cpus"`
	MemoryBytes   int64  `json:"memoryBytes"`
}

// Collection is one VirtualSystemCollection: a group of systems (a vApp)
// with its own product, licence and annotation sections, the order its
// members start and stop in, and what the group may take from a host.
type Collection struct {
	ID         string     `json:"id"`
	Name       string     `json:"name,omitempty"`
	Path       []string   `json:"path,omitempty"`
	Product    Product    `json:"product"`
	Properties []Property `json:"properties,omitempty"`
	EULAs      []string   `json:"eulas,omitempty"`
	Annotation string     `json:"annotation,omitempty"`
	// Members are the ids of the VirtualSystems and
	// VirtualSystemCollections directly inside this one, in document
	// order: what its StartupSection orders. A nested collection's own
	// members are in its own Members.
	Members []string `json:"members"`
	// Startup is the StartupSection, one item per member it names, in
	// document order. XenCenter writes its vApp's StartupSection in the
	// Envelope instead; it is read as the top-level collection's.
	Startup []StartupItem `json:"startup,omitempty"`
	// Resources are the items of the ResourceAllocationSection.
	Resources []Allocation `json:"resources,omitempty"`
}

// StartupItem is one StartupSection/Item: when a member of a collection
// starts and stops. Members start in ascending Order, those with the same
// Order possibly together, and stop in descending Order (DSP0243).
type StartupItem struct {
	ID string `json:"id"`
	// Order is ovf:order, -1 when absent or unusable.
	Order int `json:"order"`
	// StartDelay and StopDelay are ovf:startDelay and ovf:stopDelay in
	// seconds: how long to wait after starting (stopping) this member
	// before the next; 0 when absent, as DSP0243 defaults them.
	StartDelay int `json:"startDelaySeconds"`
	StopDelay  int `json:"stopDelaySeconds"`
	// WaitingForGuest is ovf:waitingForGuest: the next member starts as
	// soon as this one's guest reports ready, before StartDelay is over.
	WaitingForGuest bool `json:"waitingForGuest"`
	// StartAction ("powerOn" or "none") and StopAction ("powerOff",
	// "guestShutdown" or "none") are as written, with DSP0243's defaults
	// powerOn and powerOff when absent.
	StartAction string `json:"startAction"`
	StopAction  string `json:"stopAction"`
}

// Allocation is one Item of a ResourceAllocationSection: how much of a
// host resource (ResourceType 3 processor, 4 memory, ...) a collection is
// guaranteed, may use at most, and its share when the host is contended.
type Allocation struct {
	InstanceID   string `json:"instanceId"`
	ResourceType int    `json:"resourceType"`
	Name         string `json:"name,omitempty"`
	// Units is rasd:AllocationUnits as written ("hertz * 10^6",
	// "byte * 2^20").
	Units string `json:"allocationUnits,omitempty"`
	// BaseUnit is "byte" or "hertz" when Units is a multiple of one, and
	// Reservation and Limit are then counted in it (300 of "byte * 2^20"
	// is 314572800); otherwise BaseUnit is empty and they are in Units,
	// as written.
	BaseUnit string `json:"baseUnit,omitempty"`
	// Reservation and Limit are rasd:Reservation and rasd:Limit, -1 when
	// absent or unusable.
	Reservation int64 `json:"reservation"`
	Limit       int64 `json:"limit"`
	// Shares is rasd:Weight, the share under contention relative to the
	// host's other consumers; -1 when absent or unusable.
	Shares int64 `json:"shares"`
	// Configs lists the ovf:configuration ids the item is limited to;
	// Active says whether it is part of the default configuration.
	Configs []string `json:"configurations,omitempty"`
	Active  bool     `json:"active"`
}

// OS is the OperatingSystemSection.
type OS struct {
	// ID is the CIM operating system number (ovf:id), -1 when absent.
	ID          int    `json:"id"`
	Version     string `json:"version,omitempty"`
	VMwareType  string `json:"vmwareOsType,omitempty"`
	Description string `json:"description,omitempty"`
}

// Product is the first ProductSection of a system or collection that names
// a product, vendor or version.
type Product struct {
	Name        string `json:"name,omitempty"`
	Vendor      string `json:"vendor,omitempty"`
	Version     string `json:"version,omitempty"`
	FullVersion string `json:"fullVersion,omitempty"`
	ProductURL  string `json:"productUrl,omitempty"`
	VendorURL   string `json:"vendorUrl,omitempty"`
	AppURL      string `json:"appUrl,omitempty"`
	Class       string `json:"class,omitempty"`
	Instance    string `json:"instance,omitempty"`
}

// Property is one ProductSection/Property. Value is the default value, with
// a Value child for the default deployment configuration applied.
type Property struct {
	Key              string `json:"key"`
	Class            string `json:"class,omitempty"`
	Instance         string `json:"instance,omitempty"`
	Type             string `json:"type,omitempty"`
	Value            string `json:"value"`
	Qualifiers       string `json:"qualifiers,omitempty"`
	Label            string `json:"label,omitempty"`
	Description      string `json:"description,omitempty"`
	Category         string `json:"category,omitempty"`
	Configuration    string `json:"configuration,omitempty"`
	UserConfigurable bool   `json:"userConfigurable"`
	Password         bool   `json:"password"`
}

// Controller is a storage controller item (ResourceType 5 IDE, 6 SCSI,
// 7 FC, 8 iSCSI, 9 InfiniBand, 20 other storage such as SATA or NVMe).
type Controller struct {
	InstanceID string `json:"instanceId"`
	// Type is "ide", "scsi", "fc", "iscsi", "ib", "sata", "nvme" or
	// "other", from ResourceType and, for 20, ResourceSubType.
	Type         string   `json:"type"`
	ResourceType int      `json:"resourceType"`
	SubType      string   `json:"subType,omitempty"`
	Address      string   `json:"address,omitempty"`
	Name         string   `json:"name,omitempty"`
	Configs      []string `json:"configurations,omitempty"`
	Active       bool     `json:"active"`
}

// Attachment is a drive item: a disk (ResourceType 17, or any item whose
// HostResource names a disk) or a CD/DVD drive (15, 16), wired to a Disk
// or File and to its controller.
type Attachment struct {
	InstanceID   string `json:"instanceId"`
	Name         string `json:"name,omitempty"`
	ResourceType int    `json:"resourceType"`
	// HostResource is the reference as written; DiskID or FileID is what
	// it resolved to (both empty for an empty drive or a bad reference).
	HostResource string `json:"hostResource,omitempty"`
	DiskID       string `json:"diskId,omitempty"`
	FileID       string `json:"fileId,omitempty"`
	// Controller is the rasd:Parent InstanceID; ControllerType its type
	// when the parent is a known controller.
	Controller      string `json:"controller,omitempty"`
	ControllerType  string `json:"controllerType,omitempty"`
	AddressOnParent string `json:"addressOnParent,omitempty"`
	// Configs lists the ovf:configuration ids the item is limited to;
	// Active says whether it is part of the default configuration.
	Configs []string `json:"configurations,omitempty"`
	Active  bool     `json:"active"`
}

// NIC is an Ethernet adapter item (ResourceType 10).
type NIC struct {
	InstanceID string `json:"instanceId"`
	Name       string `json:"name,omitempty"`
	// Network is rasd:Connection, the NetworkSection name it joins.
	Network         string   `json:"network,omitempty"`
	SubType         string   `json:"subType,omitempty"`
	AddressOnParent string   `json:"addressOnParent,omitempty"`
	Configs         []string `json:"configurations,omitempty"`
	Active          bool     `json:"active"`
}
