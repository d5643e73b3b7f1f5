/* Polled output on COM1 (0x3f8), the way early Linux consoles do it: wait
   for THR empty (LSR bit 5), then write THR. */
#include "testguest.h"

#define COM1 0x3f8
#define LSR_THR_EMPTY 0x20

void serial_putc(char c) {
    while (!(inb(COM1 + 5) & LSR_THR_EMPTY)) {
    }
    outb(COM1, (uint8_t)c);
}

void print(const char* text) {
    for (; *text; ++text)
        serial_putc(*text);
}

void print_hex(uint64_t value) {
    char digits[19];
    int position = 18;
    digits[position] = 0;
    do {
        digits[--position] = "0123456789abcdef"[value & 0xf];
        value >>= 4;
    } while (value && position > 2);
    digits[--position] = 'x';
    digits[--position] = '0';
    print(&digits[position]);
}

void print_dec(uint64_t value) {
    char digits[21];
    int position = 20;
    digits[position] = 0;
    do {
        digits[--position] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    print(&digits[position]);
}

/* GCC may emit calls to these even in freestanding code. */
void* memset(void* target, int value, unsigned long length) {
    unsigned char* bytes = target;
    while (length--)
        *bytes++ = (unsigned char)value;
    return target;
}

void* memcpy(void* target, const void* source, unsigned long length) {
    unsigned char* to = target;
    const unsigned char* from = source;
    while (length--)
        *to++ = *from++;
    return target;
}
