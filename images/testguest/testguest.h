/* Shared declarations of the freestanding test guest. */
#pragma once

#include <stdint.h>

/* The stack layout isr_common (entry.S) builds, lowest address first. */
struct frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
    uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error_code;
    uint64_t rip, cs, rflags, rsp, ss;
};

static inline void outb(uint16_t port, uint8_t value) {
    __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}

static inline uint8_t inb(uint16_t port) {
    uint8_t value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}

/* serial.c */
void serial_putc(char c);
void print(const char* text);
void print_hex(uint64_t value);
void print_dec(uint64_t value);

/* cpu.c */
void cpu_setup(void);
void allow_user_access(void);

/* entry.S */
uint64_t enter_user(void (*entry)(void), void* stack);
__attribute__((noreturn)) void leave_user(uint64_t value);
uint64_t probe_read(uint64_t address);
extern char probe_read_access[], probe_fault[];

/* main.c */
void interrupt_handler(struct frame* frame);
/* Just past the first occurrence of KEY in TEXT, or 0 (command line lookups). */
const char* find_after(const char* text, const char* key);

/* The CPL3 workload and its expected result, shared with the host-side test
   (tests/integration/vmm) which recomputes it. */
#define USER_ITERATIONS 20000000ull
