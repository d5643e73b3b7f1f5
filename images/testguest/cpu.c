/* The guest's own GDT (with CPL3 segments and a TSS, Intel SDM vol. 3
   sections 3.4.5 and 7.7) and IDT (section 6.14.1). */
#include "testguest.h"

struct __attribute__((packed)) tss64 {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap_base;
};

struct __attribute__((packed)) descriptor_pointer {
    uint16_t limit;
    uint64_t base;
};

struct __attribute__((packed)) idt_gate {
    uint16_t offset_low;
    uint16_t selector;
    uint8_t ist;
    uint8_t type;
    uint16_t offset_middle;
    uint32_t offset_high;
    uint32_t reserved;
};

uint64_t guest_gdt[8] __attribute__((aligned(16))) = {
    0,
    0,
    0x00af9b000000ffffull, /* 0x10 kernel code, 64-bit, as the VMM's */
    0x00cf93000000ffffull, /* 0x18 kernel data */
    0x00cff3000000ffffull, /* 0x20 user data, DPL 3 */
    0x00affb000000ffffull, /* 0x28 user code, 64-bit, DPL 3 */
    0,                     /* 0x30 TSS, filled at run time (16 bytes) */
    0,
};

static struct tss64 tss __attribute__((aligned(16)));
static struct idt_gate idt[256] __attribute__((aligned(16)));
static uint8_t interrupt_stack[8192] __attribute__((aligned(16)));

extern char isr_0[], isr_1[], isr_2[], isr_3[], isr_4[], isr_5[], isr_6[], isr_7[], isr_8[],
    isr_9[], isr_10[], isr_11[], isr_12[], isr_13[], isr_14[], isr_15[], isr_16[], isr_17[],
    isr_18[], isr_19[], isr_20[], isr_21[], isr_32[], isr_33[], isr_34[], isr_35[], isr_36[],
    isr_37[], isr_38[], isr_39[], isr_40[], isr_41[], isr_42[], isr_43[], isr_44[], isr_45[],
    isr_46[], isr_47[];

static void set_gate(int vector, void* handler) {
    uint64_t address = (uint64_t)handler;
    idt[vector].offset_low = (uint16_t)address;
    idt[vector].selector = 0x10;
    idt[vector].ist = 0;
    idt[vector].type = 0x8e; /* present, DPL 0, 64-bit interrupt gate */
    idt[vector].offset_middle = (uint16_t)(address >> 16);
    idt[vector].offset_high = (uint32_t)(address >> 32);
}

void cpu_setup(void) {
    void* exceptions[] = {isr_0,  isr_1,  isr_2,  isr_3,  isr_4,  isr_5,  isr_6,  isr_7,
                          isr_8,  isr_9,  isr_10, isr_11, isr_12, isr_13, isr_14, isr_15,
                          isr_16, isr_17, isr_18, isr_19, isr_20, isr_21};
    void* irqs[] = {isr_32, isr_33, isr_34, isr_35, isr_36, isr_37, isr_38, isr_39,
                    isr_40, isr_41, isr_42, isr_43, isr_44, isr_45, isr_46, isr_47};
    for (int vector = 0; vector < 22; ++vector)
        set_gate(vector, exceptions[vector]);
    for (int irq = 0; irq < 16; ++irq)
        set_gate(32 + irq, irqs[irq]);

    /* Exceptions from CPL3 switch to rsp0 (SDM 6.14.4). No I/O bitmap. */
    tss.rsp[0] = (uint64_t)(interrupt_stack + sizeof(interrupt_stack));
    tss.iomap_base = sizeof(tss);
    uint64_t base = (uint64_t)&tss;
    uint64_t limit = sizeof(tss) - 1;
    guest_gdt[6] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
                   ((limit & 0xf0000) << 32) | ((base & 0xff000000) << 32);
    guest_gdt[7] = base >> 32;

    struct descriptor_pointer gdt_pointer = {sizeof(guest_gdt) - 1, (uint64_t)guest_gdt};
    struct descriptor_pointer idt_pointer = {sizeof(idt) - 1, (uint64_t)idt};
    __asm__ volatile("lgdt %0" : : "m"(gdt_pointer));
    __asm__ volatile("lidt %0" : : "m"(idt_pointer));
    __asm__ volatile("ltr %w0" : : "r"(0x30));
}

/* The VMM's identity map is supervisor-only; CPL3 code needs the U/S bit at
   every level of the walk (SDM 4.6.1). The guest owns these tables once it
   runs, so it sets the bit on the first GiB and flushes the TLB. */
void allow_user_access(void) {
    uint64_t cr3;
    __asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
    uint64_t* pml4 = (uint64_t*)(cr3 & ~0xfffull);
    uint64_t* pdpt = (uint64_t*)(pml4[0] & ~0xfffull);
    uint64_t* pd = (uint64_t*)(pdpt[0] & ~0xfffull);
    pml4[0] |= 4;
    pdpt[0] |= 4;
    for (int index = 0; index < 512; ++index)
        pd[index] |= 4;
    __asm__ volatile("mov %0, %%cr3" : : "r"(cr3) : "memory");
}
