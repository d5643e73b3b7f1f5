/* The test guest's vsock modes (testguest.vsock=..., port from
   testguest.vsock.port=, size from testguest.vsock.mib=). The sessions run
   entirely at CPL3 (shared/PVM.md); CPL0 only prints the result line that
   tests/integration/vsock checks.
     connect-echo  connect to host port P, echo until the host shuts down
     accept-echo   accept the host's CONNECT P, echo the same way
     refused       connect to host port P, where nobody listens: expect RST
     send          connect to host port P, send MIB MiB of the xorshift64
                   stream (seed VSOCK_STREAM_SEED), close: the bench */
#include "blk.h"
#include "testguest.h"
#include "vsock.h"

#define VSOCK_STREAM_SEED 0x9e3779b97f4a7c15ull
#define CHUNK 65536

static uint32_t mode_port;
static uint64_t mode_mebibytes;
static uint64_t chunk[CHUNK / 8];

#define SESSION_FAILED (~0ull)

/* Echoes until the host's SHUTDOWN, then closes; the bytes echoed. */
static uint64_t echo(void) {
    uint64_t total = 0;
    for (;;) {
        int64_t count = vsock_recv(chunk, CHUNK);
        if (count < 0)
            return SESSION_FAILED;
        if (count == 0)
            break;
        if (vsock_send(chunk, (uint32_t)count) != 0)
            return SESSION_FAILED;
        total += (uint64_t)count;
    }
    vsock_close();
    return total;
}

static uint64_t user_connect_echo(void) {
    return vsock_connect(mode_port) == 0 ? echo() : SESSION_FAILED;
}

static uint64_t user_accept_echo(void) {
    return vsock_accept(mode_port) == 0 ? echo() : SESSION_FAILED;
}

static uint64_t user_refused(void) {
    return vsock_connect(mode_port) == -1 ? 0 : SESSION_FAILED;
}

/* Generates the stream chunk by chunk (the payload generation is the
   guest's hot loop) and sends it. */
static uint64_t user_send(void) {
    if (vsock_connect(mode_port) != 0)
        return SESSION_FAILED;
    uint64_t state = VSOCK_STREAM_SEED;
    for (uint64_t sent = 0; sent < (mode_mebibytes << 20); sent += CHUNK) {
        for (uint32_t index = 0; index < CHUNK / 8; ++index) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk[index] = state;
        }
        if (vsock_send(chunk, CHUNK) != 0)
            return SESSION_FAILED;
    }
    vsock_close();
    return mode_mebibytes << 20;
}

static int has_mode(const char* cmdline, const char* mode) {
    static const char key[] = "testguest.vsock=";
    for (const char* value = cmdline; (value = find_after(value, key)) != 0;) {
        int length = 0;
        while (mode[length] && value[length] == mode[length])
            ++length;
        if (!mode[length] && (value[length] == ' ' || value[length] == 0))
            return 1;
    }
    return 0;
}

static void report(const char* mode, uint64_t result) {
    if (result == SESSION_FAILED) {
        print("FAIL vsock ");
        print(mode);
        print("\n");
        return;
    }
    print("ok vsock ");
    print(mode);
    print(" bytes=");
    print_dec(result);
    print("\n");
}

void run_vsock_mode(const char* cmdline) {
    mode_port = (uint32_t)blk_parse_option(cmdline, "testguest.vsock.port=", 1024);
    mode_mebibytes = blk_parse_option(cmdline, "testguest.vsock.mib=", 16);
    int opened = vsock_open(cmdline);
    if (opened != 0) {
        print("FAIL vsock open ");
        print_dec((uint64_t)-opened);
        print("\n");
        return;
    }
    print("vsock guest cid=");
    print_dec(vsock_guest_cid());
    print("\n");
    if (has_mode(cmdline, "connect-echo"))
        report("connect-echo", run_at_cpl3(user_connect_echo));
    else if (has_mode(cmdline, "accept-echo"))
        report("accept-echo", run_at_cpl3(user_accept_echo));
    else if (has_mode(cmdline, "refused"))
        report("refused", run_at_cpl3(user_refused));
    else if (has_mode(cmdline, "send"))
        report("send", run_at_cpl3(user_send));
    else
        print("FAIL vsock unknown mode\n");
}
