/* The patchvisor test guest: proves the microVM on kvm_pvm, where Linux
   cannot run (shared/PVM.md). One line per self-test on COM1, then a reset
   through the i8042. Little runs at CPL0 (emulated there); the hot loop runs
   at CPL3. */
#include "blk.h"
#include "testguest.h"
#include "virtio.h"
#include "vsock.h"

/* boot_params offsets (Linux Documentation/arch/x86/zero-page.rst). */
#define BP_E820_ENTRIES 0x1e8
#define BP_CMD_LINE_PTR 0x228
#define BP_E820_TABLE 0x2d0
#define E820_RAM 1

#define PIC1_COMMAND 0x20
#define PIC1_DATA 0x21
#define PIC2_COMMAND 0xa0
#define PIC2_DATA 0xa1
#define PIT_CHANNEL0 0x40
#define PIT_COMMAND 0x43
#define COM1 0x3f8
#define UNMAPPED_ADDRESS 0x0000400000000000ull /* PML4 slot 128: not present */

static volatile uint64_t timer_ticks;
static volatile uint64_t serial_interrupts;
static volatile uint8_t serial_iir;
static volatile uint64_t fault_address;
static volatile uint64_t fault_error_code;
static uint8_t user_stack[16384] __attribute__((aligned(16)));

static void triple_fault(void) {
    struct __attribute__((packed)) {
        uint16_t limit;
        uint64_t base;
    } empty_idt = {0, 0};
    __asm__ volatile("lidt %0; ud2" : : "m"(empty_idt));
}

/* i8042 "pulse reset line" ends the VM under patchvisor-vmm. QEMU's microvm
   has no i8042, so a triple fault follows (QEMU -no-reboot then exits). */
static __attribute__((noreturn)) void reset(void) {
    outb(0x64, 0xfe);
    triple_fault();
    for (;;)
        __asm__ volatile("cli; hlt");
}

static void fail(const char* what, uint64_t value) {
    print("FAIL ");
    print(what);
    print(" ");
    print_hex(value);
    print("\n");
    reset();
}

static void end_of_interrupt(uint64_t vector) {
    (void)vector;
    outb(PIC1_COMMAND, 0x20); /* non-specific EOI, 8259A OCW2 */
}

void interrupt_handler(struct frame* frame) {
    if (frame->vector == 14 && frame->rip == (uint64_t)probe_read_access) {
        __asm__ volatile("mov %%cr2, %0" : "=r"(fault_address));
        fault_error_code = frame->error_code;
        frame->rip = (uint64_t)probe_fault;
        return;
    }
    if (frame->vector == 6 && (frame->cs & 3) == 3)
        leave_user(frame->rax);
    if (frame->vector == 32) {
        ++timer_ticks;
        end_of_interrupt(frame->vector);
        return;
    }
    if (frame->vector == 36) {
        /* Reading IIR acknowledges the THR-empty interrupt; disabling IER
           keeps it from coming back. */
        serial_iir = inb(COM1 + 2);
        outb(COM1 + 1, 0);
        ++serial_interrupts;
        end_of_interrupt(frame->vector);
        return;
    }
    if (frame->vector == 39)
        return; /* spurious IRQ 7 needs no EOI */
    if (virtio_handle_irq(frame->vector))
        return;
    print("unexpected vector ");
    print_hex(frame->vector);
    print(" rip ");
    print_hex(frame->rip);
    print(" cs ");
    print_hex(frame->cs);
    fail("exception", frame->error_code);
}

const char* find_after(const char* text, const char* key) {
    for (; *text; ++text) {
        const char *a = text, *b = key;
        while (*a && *b && *a == *b)
            ++a, ++b;
        if (!*b)
            return a;
    }
    return 0;
}

static int contains(const char* text, const char* word) {
    return find_after(text, word) != 0;
}

/* Failure modes the VMM's tests provoke on purpose, chosen on the command
   line: quick (banner and reset, for bench/boot), hang (for the wall-clock
   timeout) and triple-fault (an exception
   with no usable IDT, which must end the VM with KVM_EXIT_SHUTDOWN). */
static void run_requested_failure(const char* cmdline) {
    if (contains(cmdline, "testguest.hang")) {
        print("testguest: hanging as asked\n");
        for (;;)
            __asm__ volatile("cli; hlt");
    }
    if (contains(cmdline, "testguest.quick")) {
        /* bench/boot: the same minimal work under every VMM compared. */
        print("testguest: quick boot, resetting\n");
        reset();
    }
    if (contains(cmdline, "testguest.triple-fault")) {
        print("testguest: triple fault as asked\n");
        triple_fault();
    }
}

static const char* test_memory(const uint8_t* boot_params) {
    uint8_t entries = boot_params[BP_E820_ENTRIES];
    uint64_t usable = 0, top = 0;
    for (int index = 0; index < entries; ++index) {
        const uint8_t* entry = boot_params + BP_E820_TABLE + 20 * index;
        uint64_t address = *(const uint64_t*)entry;
        uint64_t size = *(const uint64_t*)(entry + 8);
        uint32_t type = *(const uint32_t*)(entry + 16);
        if (type != E820_RAM)
            continue;
        usable += size;
        if (address + size > top)
            top = address + size;
    }
    print("ok memory e820-entries=");
    print_dec(entries);
    print(" usable-kib=");
    print_dec(usable >> 10);
    print(" top=");
    print_hex(top);
    print("\n");
    const char* cmdline =
        (const char*)(uint64_t) * (const uint32_t*)(boot_params + BP_CMD_LINE_PTR);
    print("ok cmdline ");
    print(cmdline);
    print("\n");
    return cmdline;
}

static void test_page_fault(void) {
    uint64_t value = probe_read(UNMAPPED_ADDRESS);
    if (value != ~0ull || fault_address != UNMAPPED_ADDRESS)
        fail("page fault not delivered", fault_address);
    print("ok page-fault cr2=");
    print_hex(fault_address);
    print(" error=");
    print_hex(fault_error_code);
    print("\n");
}

/* 8259A initialization (ICW1-ICW4): master at vector 32, slave at 40. */
static void setup_pic(void) {
    outb(PIC1_COMMAND, 0x11);
    outb(PIC2_COMMAND, 0x11);
    outb(PIC1_DATA, 32);
    outb(PIC2_DATA, 40);
    outb(PIC1_DATA, 0x04);
    outb(PIC2_DATA, 0x02);
    outb(PIC1_DATA, 0x01);
    outb(PIC2_DATA, 0x01);
    outb(PIC2_DATA, 0xff);
}

static void test_timer_interrupt(void) {
    outb(PIC1_DATA, 0xfe);           /* only IRQ 0 */
    outb(PIT_COMMAND, 0x34);         /* channel 0, lobyte/hibyte, mode 2 (rate generator) */
    outb(PIT_CHANNEL0, 1193 & 0xff); /* 1193182 Hz / 1193: about 1 kHz */
    outb(PIT_CHANNEL0, 1193 >> 8);
    while (timer_ticks < 3)
        __asm__ volatile("sti; hlt; cli");
    outb(PIT_COMMAND, 0x30); /* mode 0 with no count: channel 0 stops */
    outb(PIC1_DATA, 0xff);
    print("ok timer-irq ticks>=3 vector=0x20\n");
}

static void test_serial_interrupt(void) {
    outb(PIC1_DATA, 0xef); /* only IRQ 4 */
    outb(COM1 + 1, 0x02);  /* IER: THR empty; THR is empty, so it fires now */
    while (serial_interrupts == 0)
        __asm__ volatile("sti; hlt; cli");
    outb(PIC1_DATA, 0xff);
    print("ok serial-irq iir=");
    print_hex(serial_iir);
    print("\n");
}

static __attribute__((noreturn, noinline)) void user_main(void) {
    uint64_t value = 0;
    for (uint64_t index = 0; index < USER_ITERATIONS; ++index)
        value = value * 6364136223846793005ull + index;
    __asm__ volatile("mov %0, %%rax; ud2" : : "r"(value) : "rax");
    __builtin_unreachable();
}

static void test_user_mode(void) {
    allow_user_access();
    uint64_t result = enter_user(user_main, user_stack + sizeof(user_stack));
    print("ok cpl3 iterations=");
    print_dec(USER_ITERATIONS);
    print(" result=");
    print_hex(result);
    print("\n");
}

void run_agent_mode(const char* cmdline); /* agent.c: the microvm sandbox's minimal agent */

void guest_main(const uint8_t* boot_params) {
    print("patchvisor testguest 1\n");
    const char* cmdline = test_memory(boot_params);
    run_requested_failure(cmdline);
    cpu_setup();
    test_page_fault();
    setup_pic();
    if (contains(cmdline, "testguest.blk=")) {
        outb(PIC1_DATA, 0xff); /* virtio_enable_irq unmasks what it needs */
        run_blk_mode(cmdline);
        reset();
    }
    if (contains(cmdline, "testguest.vsock=")) {
        outb(PIC1_DATA, 0xff); /* polled: no interrupts needed */
        run_vsock_mode(cmdline);
        reset();
    }
    if (contains(cmdline, "testguest.agent")) {
        outb(PIC1_DATA, 0xff); /* polled: no interrupts needed */
        run_agent_mode(cmdline);
        reset();
    }
    test_timer_interrupt();
    test_serial_interrupt();
    test_user_mode();
    print("testguest: all tests passed, resetting\n");
    reset();
}
