/* Translates Xen's hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h)
   into the boot_params fields guest_main reads, so the self-tests run the
   same under QEMU's PVH boot as under patchvisor-vmm's 64-bit entry. */
#include "testguest.h"

#define HVM_START_MAGIC 0x336ec578

struct hvm_start_info {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr; /* version 1 */
    uint32_t memmap_entries;
    uint32_t reserved;
};

struct hvm_memmap_entry {
    uint64_t address;
    uint64_t size;
    uint32_t type;
    uint32_t reserved;
};

static uint8_t boot_params[4096] __attribute__((aligned(4096)));
static const char empty_cmdline[] = "";

void guest_main(const uint8_t* boot_params);

void pvh_main(const struct hvm_start_info* info) {
    if (info->magic != HVM_START_MAGIC) {
        print("FAIL pvh magic\n");
        return;
    }
    uint32_t count = 0;
    if (info->version >= 1) {
        const struct hvm_memmap_entry* map = (const void*)info->memmap_paddr;
        for (; count < info->memmap_entries && count < 128; ++count) {
            uint8_t* entry = boot_params + 0x2d0 + 20 * count;
            *(uint64_t*)entry = map[count].address;
            *(uint64_t*)(entry + 8) = map[count].size;
            *(uint32_t*)(entry + 16) = map[count].type;
        }
    }
    boot_params[0x1e8] = (uint8_t)count;
    uint64_t cmdline = info->cmdline_paddr ? info->cmdline_paddr : (uint64_t)empty_cmdline;
    *(uint32_t*)(boot_params + 0x228) = (uint32_t)cmdline;
    guest_main(boot_params);
}
