/* virtio-blk modes of the test guest. The host-side tests
   (tests/integration/virtio_blk) build the expected disk independently with
   qemu-io from the same numbers, so these constants are part of the test:

     rw:    write sector 0 (4 KiB of 0x5a), sector 2049 (64 KiB of 0xa5, two
            data descriptors, crossing 64 KiB clusters unaligned) and the
            last 8 sectors (0x3c); FLUSH completed by interrupt; read all
            back and verify; check an unwritten range still holds the base
            pattern (testguest.blk.base=0xNN); GET_ID.
     ro:    a write must fail with IOERR, reads work.
     write-hang: write sector 0 (4 KiB of 0x5a) without FLUSH, then hang.
     bad:   malformed chains (blk_bad.c).
     bench: reads at CPL3 (blk_bench.c: testguest.blk.mib, .request-kib,
            .segment-kib, .random).

   Pattern fills and verification run at CPL3 (shared/PVM.md: CPL0 is
   emulated), so does the whole benchmark loop. */
#include "blk.h"

#include "testguest.h"

struct virtio_device blk_device;
uint8_t blk_data[BLK_DATA_SIZE] __attribute__((aligned(4096)));

static struct blk_header request_header;
static volatile uint8_t request_status;
static uint8_t user_stack[16384] __attribute__((aligned(16)));

/* Arguments of the CPL3 helpers (enter_user passes none). */
static uint64_t (*user_function)(void);
static uint8_t* fill_target;
static uint64_t fill_length;
static uint8_t fill_value;

void blk_fail(const char* what, uint64_t value) {
    print("FAIL virtio-blk ");
    print(what);
    print(" ");
    print_hex(value);
    print("\n");
    outb(0x64, 0xfe); /* reset: the host sees the FAIL line */
    for (;;)
        __asm__ volatile("cli; hlt");
}

static __attribute__((noreturn)) void user_trampoline(void) {
    uint64_t value = user_function();
    __asm__ volatile("mov %0, %%rax; ud2" : : "r"(value) : "rax");
    __builtin_unreachable();
}

uint64_t run_at_cpl3(uint64_t (*function)(void)) {
    user_function = function;
    return enter_user(user_trampoline, user_stack + sizeof(user_stack));
}

static uint64_t user_fill(void) {
    for (uint64_t index = 0; index < fill_length; ++index)
        fill_target[index] = fill_value;
    return 0;
}

/* How many bytes differ from fill_value. */
static uint64_t user_verify(void) {
    uint64_t wrong = 0;
    for (uint64_t index = 0; index < fill_length; ++index)
        wrong += fill_target[index] != fill_value;
    return wrong;
}

static void fill(uint8_t* target, uint64_t length, uint8_t value) {
    fill_target = target, fill_length = length, fill_value = value;
    run_at_cpl3(user_fill);
}

static uint64_t verify(const uint8_t* target, uint64_t length, uint8_t value) {
    fill_target = (uint8_t*)target, fill_length = length, fill_value = value;
    return run_at_cpl3(user_verify);
}

uint64_t blk_parse_option(const char* cmdline, const char* key, uint64_t fallback) {
    const char* digits = find_after(cmdline, key);
    if (!digits)
        return fallback;
    int hex = digits[0] == '0' && digits[1] == 'x';
    uint64_t value = 0;
    for (digits += hex ? 2 : 0;; ++digits) {
        char c = *digits;
        if (c >= '0' && c <= '9')
            value = value * (hex ? 16 : 10) + (uint64_t)(c - '0');
        else if (hex && c >= 'a' && c <= 'f')
            value = value * 16 + (uint64_t)(c - 'a' + 10);
        else
            return value;
    }
}

uint32_t blk_submit(const struct virtq_buffer* buffers, int count, int sleep) {
    struct virtq* queue = &blk_device.queues[0];
    uint64_t interrupts = blk_device.interrupts;
    int head = virtq_post(queue, buffers, count);
    if (head < 0)
        blk_fail("queue full", (uint64_t)count);
    virtio_notify(&blk_device, 0);
    uint32_t length = 0;
    for (;;) {
        if (sleep) {
            /* The completion arrives as IRQ (irqfd); hlt keeps the vCPU in
               the kernel until then. */
            while (blk_device.interrupts == interrupts)
                __asm__ volatile("sti; hlt; cli");
        }
        int taken = virtq_take(queue, &length);
        if (taken == head)
            return length;
        if (taken >= 0)
            blk_fail("unexpected used id", (uint64_t)taken);
    }
}

struct blk_result blk_request(uint32_t type, uint64_t sector, void* data, uint32_t length) {
    request_header.type = type;
    request_header.reserved = 0;
    request_header.sector = sector;
    request_status = 0xff;
    struct virtq_buffer buffers[3] = {{&request_header, sizeof(request_header), 0}};
    int count = 1;
    if (length)
        buffers[count++] = (struct virtq_buffer){data, length, type != BLK_T_OUT};
    buffers[count++] = (struct virtq_buffer){(const void*)&request_status, 1, 1};
    uint32_t used = blk_submit(buffers, count, 0);
    return (struct blk_result){request_status, used};
}

static void print_result(const char* what, uint64_t sector, uint64_t bytes, uint8_t pattern) {
    print("ok virtio-blk ");
    print(what);
    print(" sector=");
    print_dec(sector);
    print(" bytes=");
    print_dec(bytes);
    print(" pattern=");
    print_hex(pattern);
    print("\n");
}

struct region {
    uint64_t sector;
    uint32_t bytes;
    uint8_t pattern;
};

static void write_region(const struct region* region, int split) {
    fill(blk_data, region->bytes, region->pattern);
    request_header = (struct blk_header){BLK_T_OUT, 0, region->sector};
    request_status = 0xff;
    /* SPLIT: two data descriptors, to exercise multi-buffer requests. */
    uint32_t first = split ? 4096 : region->bytes;
    struct virtq_buffer buffers[4] = {{&request_header, sizeof(request_header), 0},
                                      {blk_data, first, 0},
                                      {blk_data + first, region->bytes - first, 0}};
    int count = split ? 3 : 2;
    buffers[count++] = (struct virtq_buffer){(const void*)&request_status, 1, 1};
    uint32_t used = blk_submit(buffers, count, 0);
    if (request_status != BLK_S_OK || used != 1)
        blk_fail("write status", request_status);
    print_result("write", region->sector, region->bytes, region->pattern);
}

static void read_and_verify(const char* what, uint64_t sector, uint32_t bytes, uint8_t pattern) {
    fill(blk_data, bytes, (uint8_t)~pattern);
    struct blk_result result = blk_request(BLK_T_IN, sector, blk_data, bytes);
    if (result.status != BLK_S_OK || result.used_length != bytes + 1)
        blk_fail("read status", result.status);
    uint64_t wrong = verify(blk_data, bytes, pattern);
    if (wrong)
        blk_fail("verify: bytes differ", wrong);
    print_result(what, sector, bytes, pattern);
}

static void flush_by_interrupt(void) {
    request_header = (struct blk_header){BLK_T_FLUSH, 0, 0};
    request_status = 0xff;
    struct virtq_buffer buffers[2] = {{&request_header, sizeof(request_header), 0},
                                      {(const void*)&request_status, 1, 1}};
    virtio_enable_irq(&blk_device);
    uint32_t used = blk_submit(buffers, 2, 1);
    if (request_status != BLK_S_OK || used != 1)
        blk_fail("flush status", request_status);
    print("ok virtio-blk flush status=0 by-interrupt irq=");
    print_dec(blk_device.irq);
    print(" interrupt-status=");
    print_hex(blk_device.interrupt_bits);
    print("\n");
}

static void get_id(void) {
    char id[21] = {0};
    struct blk_result result = blk_request(BLK_T_GET_ID, 0, id, 20);
    if (result.status != BLK_S_OK)
        blk_fail("get-id status", result.status);
    print("ok virtio-blk id=");
    print(id);
    print("\n");
}

static void mode_read_write(uint64_t capacity, uint8_t base_pattern) {
    const struct region regions[] = {
        {0, 4096, 0x5a},
        {2049, 65536, 0xa5},
        {capacity - 8, 4096, 0x3c},
    };
    for (int index = 0; index < 3; ++index)
        write_region(&regions[index], index == 1);
    flush_by_interrupt();
    for (int index = 0; index < 3; ++index)
        read_and_verify("verify", regions[index].sector, regions[index].bytes,
                        regions[index].pattern);
    read_and_verify("base", 4096, 4096, base_pattern);
    get_id();
}

static void mode_read_only(uint8_t base_pattern) {
    if (!(blk_device.features & BLK_F_RO))
        blk_fail("read-only feature not offered", blk_device.features);
    fill(blk_data, 4096, 0x77);
    struct blk_result result = blk_request(BLK_T_OUT, 0, blk_data, 4096);
    if (result.status != BLK_S_IOERR || result.used_length != 1)
        blk_fail("read-only write status", result.status);
    print("ok virtio-blk readonly write-status=1\n");
    read_and_verify("readonly-read", 0, 4096, base_pattern);
}

/* Writes without FLUSH, then hangs until the VMM's timeout: what the guest
   wrote must still be in the file, because the VMM flushes at the end. */
static void mode_write_and_hang(void) {
    const struct region region = {0, 4096, 0x5a};
    write_region(&region, 0);
    print("testguest: hanging with an unflushed write\n");
    for (;;)
        __asm__ volatile("cli; hlt");
}

/* Whether the command line holds WORD followed by a space or its end. */
static int has_word(const char* cmdline, const char* word) {
    for (const char* text = cmdline; *text; ++text) {
        int index = 0;
        while (word[index] && text[index] == word[index])
            ++index;
        if (!word[index] && (text[index] == ' ' || text[index] == 0))
            return 1;
    }
    return 0;
}

int blk_open(const char* cmdline, uint64_t* capacity) {
    if (virtio_find(&blk_device, VIRTIO_ID_BLOCK, cmdline) != 0)
        return -1;
    int started = virtio_start(&blk_device, BLK_F_RO | BLK_F_FLUSH, 1);
    if (started != 0)
        return started;
    *capacity = virtio_config64(&blk_device, 0);
    return 0;
}

void run_blk_mode(const char* cmdline) {
    virtio_map_windows();
    allow_user_access();
    uint64_t capacity = 0;
    int opened = blk_open(cmdline, &capacity);
    if (opened != 0)
        blk_fail("open", (uint64_t)(int64_t)opened);
    print("ok virtio-blk found base=");
    print_hex((uint64_t)blk_device.base);
    print(" irq=");
    print_dec(blk_device.irq);
    print(" capacity=");
    print_dec(capacity);
    print(" read-only=");
    print_dec((blk_device.features & BLK_F_RO) != 0);
    print("\n");
    uint8_t base_pattern = (uint8_t)blk_parse_option(cmdline, "testguest.blk.base=", 0);
    if (has_word(cmdline, "testguest.blk=rw"))
        mode_read_write(capacity, base_pattern);
    else if (has_word(cmdline, "testguest.blk=write-hang"))
        mode_write_and_hang();
    else if (has_word(cmdline, "testguest.blk=ro"))
        mode_read_only(base_pattern);
    else if (has_word(cmdline, "testguest.blk=bad"))
        blk_bad_descriptors(capacity);
    else if (has_word(cmdline, "testguest.blk=bench"))
        blk_bench(capacity, cmdline);
    else
        blk_fail("unknown testguest.blk mode", 0);
    print("testguest: virtio-blk done, resetting\n");
}
