#pragma once

// struct boot_params ("zero page") and its setup_header, byte for byte as in
// Documentation/arch/x86/zero-page.rst and boot.rst ("The real-mode kernel
// header"). The offsets are asserted below, so a layout slip fails to compile.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace pv::vmm::boot {

#pragma pack(push, 1)
struct SetupHeader {
    uint8_t setup_sects;
    uint16_t root_flags;
    uint32_t syssize;
    uint16_t ram_size;
    uint16_t vid_mode;
    uint16_t root_dev;
    uint16_t boot_flag;
    uint16_t jump;
    uint32_t header;
    uint16_t version;
    uint32_t realmode_swtch;
    uint16_t start_sys_seg;
    uint16_t kernel_version;
    uint8_t type_of_loader;
    uint8_t loadflags;
    uint16_t setup_move_size;
    uint32_t code32_start;
    uint32_t ramdisk_image;
    uint32_t ramdisk_size;
    uint32_t bootsect_kludge;
    uint16_t heap_end_ptr;
    uint8_t ext_loader_ver;
    uint8_t ext_loader_type;
    uint32_t cmd_line_ptr;
    uint32_t initrd_addr_max;
    uint32_t kernel_alignment;
    uint8_t relocatable_kernel;
    uint8_t min_alignment;
    uint16_t xloadflags;
    uint32_t cmdline_size;
    uint32_t hardware_subarch;
    uint64_t hardware_subarch_data;
    uint32_t payload_offset;
    uint32_t payload_length;
    uint64_t setup_data;
    uint64_t pref_address;
    uint32_t init_size;
    uint32_t handover_offset;
    uint32_t kernel_info_offset;
};

struct E820Entry {
    uint64_t address;
    uint64_t size;
    uint32_t type;
};

struct BootParams {
    uint8_t screen_info[0x40];
    uint8_t apm_bios_info[0x14];
    uint8_t pad1[4];
    uint64_t tboot_addr;
    uint8_t ist_info[0x10];
    uint64_t acpi_rsdp_addr;
    uint8_t pad2[8];
    uint8_t hd0_info[16];
    uint8_t hd1_info[16];
    uint8_t sys_desc_table[0x10];
    uint8_t olpc_ofw_header[0x10];
    uint32_t ext_ramdisk_image;
    uint32_t ext_ramdisk_size;
    uint32_t ext_cmd_line_ptr;
    uint8_t pad3[0x74];
    uint8_t edid_info[0x80];
    uint8_t efi_info[0x20];
    uint32_t alt_mem_k;
    uint32_t scratch;
    uint8_t e820_entries;
    uint8_t eddbuf_entries;
    uint8_t edd_mbr_sig_buf_entries;
    uint8_t kbd_status;
    uint8_t secure_boot;
    uint8_t pad5[2];
    uint8_t sentinel;
    uint8_t pad6[1];
    SetupHeader hdr;
    uint8_t pad7[0x290 - 0x1f1 - sizeof(SetupHeader)];
    uint32_t edd_mbr_sig_buffer[16];
    E820Entry e820_table[128];
    uint8_t pad8[48];
    uint8_t eddbuf[0x1ec];
    uint8_t pad9[276];
};
#pragma pack(pop)

static_assert(sizeof(SetupHeader) == 0x26c - 0x1f1);
static_assert(sizeof(E820Entry) == 20);
static_assert(sizeof(BootParams) == 4096);
static_assert(offsetof(BootParams, acpi_rsdp_addr) == 0x070);
static_assert(offsetof(BootParams, ext_ramdisk_image) == 0x0c0);
static_assert(offsetof(BootParams, ext_cmd_line_ptr) == 0x0c8);
static_assert(offsetof(BootParams, alt_mem_k) == 0x1e0);
static_assert(offsetof(BootParams, e820_entries) == 0x1e8);
static_assert(offsetof(BootParams, sentinel) == 0x1ef);
static_assert(offsetof(BootParams, hdr) == 0x1f1);
static_assert(offsetof(BootParams, hdr) + offsetof(SetupHeader, header) == 0x202);
static_assert(offsetof(BootParams, hdr) + offsetof(SetupHeader, type_of_loader) == 0x210);
static_assert(offsetof(BootParams, hdr) + offsetof(SetupHeader, cmd_line_ptr) == 0x228);
static_assert(offsetof(BootParams, hdr) + offsetof(SetupHeader, xloadflags) == 0x236);
static_assert(offsetof(BootParams, hdr) + offsetof(SetupHeader, cmdline_size) == 0x238);
static_assert(offsetof(BootParams, hdr) + offsetof(SetupHeader, pref_address) == 0x258);
static_assert(offsetof(BootParams, hdr) + offsetof(SetupHeader, init_size) == 0x260);
static_assert(offsetof(BootParams, e820_table) == 0x2d0);
static_assert(offsetof(BootParams, eddbuf) == 0xd00);

inline constexpr uint32_t kE820Ram = 1;
inline constexpr uint32_t kE820Reserved = 2;
inline constexpr size_t kE820MaxEntries = 128;

// boot.rst: loadflags and xloadflags bits, and the header magic.
inline constexpr uint32_t kHdrSMagic = 0x53726448;  // "HdrS"
inline constexpr uint16_t kBootFlagMagic = 0xaa55;
inline constexpr uint8_t kLoadedHigh = 0x01;
inline constexpr uint8_t kKeepSegments = 0x40;
inline constexpr uint8_t kCanUseHeap = 0x80;
inline constexpr uint16_t kXlfKernel64 = 0x01;
inline constexpr uint16_t kXlfCanBeLoadedAbove4G = 0x02;
// type_of_loader 0xff: "undefined" boot loader, as boot.rst asks of loaders
// without an assigned ID.
inline constexpr uint8_t kUndefinedLoader = 0xff;

// Adds an e820 entry; errors when the table is full or the range overflows.
[[nodiscard]] Result<void> add_e820_entry(BootParams& params, uint64_t address, uint64_t size,
                                          uint32_t type);

// The e820 map of a microVM with `memory_size` bytes of RAM (layout.hpp):
// base memory up to the EBDA, then RAM from 1 MiB, split around the MMIO gap.
[[nodiscard]] Result<void> fill_e820(BootParams& params, uint64_t memory_size);

// Checks a kernel command line against the kernel's limit (cmdline_size
// excludes the terminating NUL, boot.rst "Details of header fields").
[[nodiscard]] Result<void> check_cmdline(std::string_view cmdline, uint32_t limit);

}  // namespace pv::vmm::boot
