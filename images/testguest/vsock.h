/* The test guest's virtio-vsock driver (virtio 1.2 §5.10): one stream at a
   time, polled (no interrupts), so every call also works at CPL3 where hot
   loops belong (shared/PVM.md). Chosen on the command line with
   testguest.vsock=connect-echo|accept-echo|refused|send|agent.

   The API, for any guest mode (e.g. a minimal agent):
     if (vsock_open(cmdline) != 0) fail;          // CPL0, once
     if (vsock_connect(port) != 0) fail;          // host port P → <uds>_P
     vsock_send(bytes, length);                   // 0, or -1 after a RST
     int64_t n = vsock_recv(buffer, capacity);    // >0 bytes, 0 end, -1 RST
     vsock_close();                               // SHUTDOWN, wait for RST
   vsock_accept(port) waits for the host's "CONNECT port" instead. */
#pragma once

#include <stdint.h>

#include "virtio.h"

/* §5.10.6: struct virtio_vsock_hdr. */
struct __attribute__((packed)) vsock_header {
    uint64_t src_cid;
    uint64_t dst_cid;
    uint32_t src_port;
    uint32_t dst_port;
    uint32_t len;
    uint16_t type;
    uint16_t op;
    uint32_t flags;
    uint32_t buf_alloc;
    uint32_t fwd_cnt;
};

#define VSOCK_HOST_CID 2
#define VSOCK_TYPE_STREAM 1
#define VSOCK_OP_REQUEST 1
#define VSOCK_OP_RESPONSE 2
#define VSOCK_OP_RST 3
#define VSOCK_OP_SHUTDOWN 4
#define VSOCK_OP_RW 5
#define VSOCK_OP_CREDIT_UPDATE 6
#define VSOCK_OP_CREDIT_REQUEST 7
#define VSOCK_SHUTDOWN_RECEIVE 1
#define VSOCK_SHUTDOWN_SEND 2

/* CPL0, once: maps the virtio windows for CPL3, finds and starts the
   device, posts the RX buffers. 0, or negative. */
int vsock_open(const char* cmdline);
uint64_t vsock_guest_cid(void);
/* Connects to host port PORT: 0 when accepted, -1 on RST. */
int vsock_connect(uint32_t port);
/* Waits for the host to connect to guest port PORT and accepts: 0. */
int vsock_accept(uint32_t port);
/* Sends all LENGTH bytes within the host's credit: 0, or -1 after a RST. */
int vsock_send(const void* data, uint32_t length);
/* Up to CAPACITY bytes: the count, 0 once the host shut down its side and
   everything is read, -1 after a RST. */
int64_t vsock_recv(void* data, uint32_t capacity);
/* Orderly close (SHUTDOWN both ways, then the host's RST). */
void vsock_close(void);

/* vsock.c: the modes. */
void run_vsock_mode(const char* cmdline);
