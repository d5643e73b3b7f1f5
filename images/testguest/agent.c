/* testguest.agent: the minimal agent the microvm sandbox's tests run
   (tests/integration/microvm). Like pv-agent in the microVM, it takes its
   host port from pv.port= on the command line and its disk is the one
   virtio-blk device:
     1. reads sector 0 through virtio-blk (the base, under the overlay);
     2. writes the marker at sector 2048 and flushes;
     3. connects over vsock to host port P (the sandbox's <uds>_P) and sends
        a Hello frame: proto/agent.proto framing, a 4-byte big-endian length
        and a serialized Envelope, encoded by hand below;
     4. waits for the host's answer (or its close), closes orderly and
        resets; with testguest.linger it hangs instead, for the deadline
        tests. The host test checks all of it; these constants are part of
        that test. */
#include "blk.h"
#include "testguest.h"
#include "virtio.h"
#include "vsock.h"

#define AGENT_MARKER_SECTOR 2048
#define AGENT_MARKER "patchvisor testguest agent marker"
#define SECTOR0_BYTES 16

static uint8_t frame[256];
static uint8_t reply[256];

static __attribute__((noreturn)) void agent_fail(const char* what, uint64_t value) {
    print("FAIL testguest agent ");
    print(what);
    print(" ");
    print_hex(value);
    print("\n");
    outb(0x64, 0xfe); /* reset: the host sees the FAIL line in the log */
    for (;;)
        __asm__ volatile("cli; hlt");
}

static int has_word(const char* cmdline, const char* word) {
    for (const char* text = cmdline; *text; ++text) {
        if (text != cmdline && text[-1] != ' ')
            continue;
        uint32_t index = 0;
        while (word[index] && text[index] == word[index])
            ++index;
        if (!word[index] && (text[index] == ' ' || text[index] == 0))
            return 1;
    }
    return 0;
}

/* Protocol buffers encoding (protobuf.dev/programming-guides/encoding):
   a key is (field << 3) | wire type; 0 = varint, 2 = length-delimited. */
static uint32_t put_varint(uint8_t* out, uint64_t value) {
    uint32_t used = 0;
    do {
        uint8_t byte = value & 0x7f;
        value >>= 7;
        out[used++] = byte | (value ? 0x80 : 0);
    } while (value);
    return used;
}

static uint32_t put_bytes(uint8_t* out, uint32_t field, const void* data, uint32_t length) {
    uint32_t used = put_varint(out, (uint64_t)field << 3 | 2);
    used += put_varint(out + used, length);
    for (uint32_t index = 0; index < length; ++index)
        out[used + index] = ((const uint8_t*)data)[index];
    return used + length;
}

/* Envelope{request_id: 1, hello: Hello{major: 1, agent_version: "testguest",
   kernel: "sector0:" + the disk's first bytes, sandbox: "microvm"}} behind
   its big-endian length. Returns the frame's size. */
static uint32_t encode_hello(const uint8_t* sector0) {
    static uint8_t hello[128];
    char kernel[8 + SECTOR0_BYTES];
    const char* prefix = "sector0:";
    for (uint32_t index = 0; index < 8; ++index)
        kernel[index] = prefix[index];
    for (uint32_t index = 0; index < SECTOR0_BYTES; ++index) {
        uint8_t byte = sector0[index];
        kernel[8 + index] = byte >= 0x20 && byte < 0x7f ? (char)byte : '?'; /* stays UTF-8 */
    }
    uint32_t length = put_varint(hello, 1 << 3 | 0); /* major = 1 */
    length += put_varint(hello + length, 1);
    length += put_bytes(hello + length, 3, "testguest", 9);
    length += put_bytes(hello + length, 4, kernel, sizeof(kernel));
    length += put_bytes(hello + length, 5, "microvm", 7);

    uint8_t* envelope = frame + 4;
    uint32_t size = put_varint(envelope, 1 << 3 | 0); /* request_id = 1 */
    size += put_varint(envelope + size, 1);
    size += put_bytes(envelope + size, 10, hello, length); /* oneof body: hello */
    frame[0] = (uint8_t)(size >> 24);
    frame[1] = (uint8_t)(size >> 16);
    frame[2] = (uint8_t)(size >> 8);
    frame[3] = (uint8_t)size;
    return size + 4;
}

static void use_disk(const char* cmdline, uint8_t* sector0) {
    if (virtio_find(&blk_device, VIRTIO_ID_BLOCK, cmdline) != 0)
        agent_fail("no virtio-blk device", 0);
    int started = virtio_start(&blk_device, BLK_F_FLUSH, 1);
    if (started != 0)
        agent_fail("virtio-blk start", (uint64_t)(int64_t)started);
    struct blk_result result = blk_request(BLK_T_IN, 0, blk_data, SECTOR);
    if (result.status != BLK_S_OK)
        agent_fail("read sector 0", result.status);
    for (uint32_t index = 0; index < SECTOR0_BYTES; ++index)
        sector0[index] = blk_data[index];
    print("testguest: agent read sector 0\n");

    for (uint32_t index = 0; index < SECTOR; ++index)
        blk_data[index] = 0;
    const char* marker = AGENT_MARKER;
    for (uint32_t index = 0; marker[index]; ++index)
        blk_data[index] = (uint8_t)marker[index];
    result = blk_request(BLK_T_OUT, AGENT_MARKER_SECTOR, blk_data, SECTOR);
    if (result.status != BLK_S_OK)
        agent_fail("write the marker", result.status);
    result = blk_request(BLK_T_FLUSH, 0, 0, 0);
    if (result.status != BLK_S_OK)
        agent_fail("flush", result.status);
    print("testguest: agent wrote the marker at sector ");
    print_dec(AGENT_MARKER_SECTOR);
    print("\n");
}

void run_agent_mode(const char* cmdline) {
    uint64_t port = blk_parse_option(cmdline, "pv.port=", 0);
    if (port == 0 || port > 0xffffffffull)
        agent_fail("no pv.port= on the command line", port);
    print("testguest: agent for host port ");
    print_dec(port);
    print("\n");
    /* vsock_open maps the virtio windows for CPL3 as well. */
    if (vsock_open(cmdline) != 0)
        agent_fail("no virtio-vsock device", 0);
    uint8_t sector0[SECTOR0_BYTES];
    use_disk(cmdline, sector0);

    if (vsock_connect((uint32_t)port) != 0)
        agent_fail("vsock connect refused", port);
    uint32_t size = encode_hello(sector0);
    if (vsock_send(frame, size) != 0)
        agent_fail("send the hello", size);
    print("testguest: agent sent hello bytes=");
    print_dec(size);
    print("\n");
    if (has_word(cmdline, "testguest.linger")) {
        print("testguest: agent lingering\n");
        for (;;)
            __asm__ volatile("cli; hlt");
    }
    int64_t got = vsock_recv(reply, sizeof(reply));
    print("testguest: agent got a reply bytes=");
    print_dec(got > 0 ? (uint64_t)got : 0);
    print("\n");
    vsock_close();
    print("testguest: agent done, resetting\n");
}
