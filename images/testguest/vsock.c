/* The test guest's virtio-vsock driver (see vsock.h): queue 0 RX, 1 TX,
   2 event (§5.10.2). RX buffers are posted once and reposted as soon as
   their packet is handled; received bytes wait in a ring whose size is the
   buf_alloc we advertise, so the host can never overrun it. Every loop here
   only touches guest memory and the MMIO window, so it runs at CPL3. */
#include "vsock.h"

#include "testguest.h"

#define RX_COUNT 16
#define RX_SIZE (sizeof(struct vsock_header) + 65536)
#define TX_SLOTS 16
#define TX_PAYLOAD 65536
#define RING_SIZE (1u << 20) /* our buf_alloc */
#define CREDIT_THRESHOLD (RING_SIZE / 4)
#define FIRST_LOCAL_PORT 49152

enum stream_state { CLOSED, CONNECTING, LISTENING, ESTABLISHED, RESET };

static struct virtio_device vsock_device;
static uint8_t rx_buffers[RX_COUNT][RX_SIZE] __attribute__((aligned(64)));
static int8_t rx_slot_of_head[VIRTQ_SIZE];
static struct vsock_header tx_headers[TX_SLOTS];
static uint8_t tx_payloads[TX_SLOTS][TX_PAYLOAD] __attribute__((aligned(64)));
static int8_t tx_slot_of_head[VIRTQ_SIZE];
static uint32_t tx_busy; /* bit per slot */
static uint8_t ring[RING_SIZE] __attribute__((aligned(64)));

static struct {
    uint64_t cid;
    enum stream_state state;
    uint32_t local_port, peer_port, listen_port;
    uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt; /* our credit at the host */
    uint32_t rx_cnt, fwd_cnt, advertised_fwd_cnt;  /* the host's credit with us */
    uint32_t ring_read;                            /* ring holds rx_cnt - fwd_cnt bytes */
    int peer_done;                                 /* SHUTDOWN(SEND) seen */
} stream;
static uint32_t next_local_port = FIRST_LOCAL_PORT;

static void copy_bytes(uint8_t* target, const uint8_t* source, uint32_t length) {
    for (uint32_t index = 0; index < length; ++index)
        target[index] = source[index];
}

static void post_rx(int slot) {
    struct virtq_buffer buffer = {rx_buffers[slot], RX_SIZE, 1};
    int head = virtq_post(&vsock_device.queues[0], &buffer, 1);
    if (head >= 0)
        rx_slot_of_head[head] = (int8_t)slot;
}

/* Reclaims sent packets; returns a free TX slot or -1. */
static int free_tx_slot(void) {
    uint32_t length;
    int head;
    while ((head = virtq_take(&vsock_device.queues[1], &length)) >= 0)
        if (head < VIRTQ_SIZE && tx_slot_of_head[head] >= 0)
            tx_busy &= ~(1u << tx_slot_of_head[head]);
    for (int slot = 0; slot < TX_SLOTS; ++slot)
        if (!(tx_busy & (1u << slot)))
            return slot;
    return -1;
}

/* Sends one packet to the current peer; spins for a TX slot. */
static void send_packet(uint16_t op, uint32_t flags, const uint8_t* payload, uint32_t length) {
    int slot;
    while ((slot = free_tx_slot()) < 0)
        __asm__ volatile("pause");
    struct vsock_header* header = &tx_headers[slot];
    header->src_cid = stream.cid;
    header->dst_cid = VSOCK_HOST_CID;
    header->src_port = stream.local_port;
    header->dst_port = stream.peer_port;
    header->len = length;
    header->type = VSOCK_TYPE_STREAM;
    header->op = op;
    header->flags = flags;
    header->buf_alloc = RING_SIZE;
    header->fwd_cnt = stream.fwd_cnt;
    stream.advertised_fwd_cnt = stream.fwd_cnt;
    struct virtq_buffer buffers[2] = {{header, sizeof(*header), 0}, {tx_payloads[slot], length, 0}};
    if (length)
        copy_bytes(tx_payloads[slot], payload, length);
    int head = virtq_post(&vsock_device.queues[1], buffers, length ? 2 : 1);
    if (head < 0)
        return; /* cannot happen: a free slot means free descriptors */
    tx_busy |= 1u << slot;
    tx_slot_of_head[head] = (int8_t)slot;
    virtio_notify(&vsock_device, 1);
}

static void take_data(const struct vsock_header* header, const uint8_t* payload) {
    /* The host must stay within the credit we gave; a byte beyond it
       would overwrite unread data, so the stream is reset instead. */
    if (stream.state != ESTABLISHED || header->len > RING_SIZE - (stream.rx_cnt - stream.fwd_cnt)) {
        send_packet(VSOCK_OP_RST, 0, 0, 0);
        stream.state = RESET;
        return;
    }
    for (uint32_t index = 0; index < header->len; ++index)
        ring[(stream.rx_cnt + index) % RING_SIZE] = payload[index];
    stream.rx_cnt += header->len;
}

static void handle_packet(const struct vsock_header* header, const uint8_t* payload) {
    if (header->src_cid != VSOCK_HOST_CID || header->dst_cid != stream.cid)
        return;
    if (header->op == VSOCK_OP_REQUEST && stream.state == LISTENING &&
        header->dst_port == stream.listen_port) {
        stream.local_port = header->dst_port;
        stream.peer_port = header->src_port;
        stream.peer_buf_alloc = header->buf_alloc;
        stream.peer_fwd_cnt = header->fwd_cnt;
        stream.state = ESTABLISHED;
        send_packet(VSOCK_OP_RESPONSE, 0, 0, 0);
        return;
    }
    if (header->dst_port != stream.local_port || header->src_port != stream.peer_port ||
        (stream.state != CONNECTING && stream.state != ESTABLISHED))
        return;
    stream.peer_buf_alloc = header->buf_alloc;
    stream.peer_fwd_cnt = header->fwd_cnt;
    switch (header->op) {
        case VSOCK_OP_RESPONSE:
            stream.state = ESTABLISHED;
            break;
        case VSOCK_OP_RST:
            stream.state = RESET;
            break;
        case VSOCK_OP_SHUTDOWN:
            stream.peer_done |= (header->flags & VSOCK_SHUTDOWN_SEND) != 0;
            break;
        case VSOCK_OP_RW:
            take_data(header, payload);
            break;
        case VSOCK_OP_CREDIT_REQUEST:
            send_packet(VSOCK_OP_CREDIT_UPDATE, 0, 0, 0);
            break;
        default:
            break;
    }
}

/* Handles every packet the device has returned and reposts the buffers. */
static void poll(void) {
    uint32_t length;
    int head, reposted = 0;
    while ((head = virtq_take(&vsock_device.queues[0], &length)) >= 0) {
        if (head >= VIRTQ_SIZE)
            continue;
        int slot = rx_slot_of_head[head];
        const struct vsock_header* header = (const struct vsock_header*)rx_buffers[slot];
        if (length >= sizeof(*header) && header->len <= length - sizeof(*header))
            handle_packet(header, rx_buffers[slot] + sizeof(*header));
        post_rx(slot);
        reposted = 1;
    }
    if (reposted)
        virtio_notify(&vsock_device, 0);
}

int vsock_open(const char* cmdline) {
    virtio_map_windows();
    allow_user_access(); /* the rings and buffers live in the guest image */
    if (virtio_find(&vsock_device, VIRTIO_ID_VSOCK, cmdline) != 0)
        return -1;
    if (virtio_start(&vsock_device, 1 /* VIRTIO_VSOCK_F_STREAM */, 3) != 0)
        return -2;
    stream.cid = virtio_config64(&vsock_device, 0);
    for (int slot = 0; slot < RX_COUNT; ++slot)
        post_rx(slot);
    virtio_notify(&vsock_device, 0);
    return 0;
}

uint64_t vsock_guest_cid(void) {
    return stream.cid;
}

static void reset_stream_state(enum stream_state state) {
    uint64_t cid = stream.cid;
    uint8_t* bytes = (uint8_t*)&stream;
    for (uint32_t index = 0; index < sizeof(stream); ++index)
        bytes[index] = 0;
    stream.cid = cid;
    stream.state = state;
}

int vsock_connect(uint32_t port) {
    reset_stream_state(CONNECTING);
    stream.local_port = next_local_port++;
    stream.peer_port = port;
    send_packet(VSOCK_OP_REQUEST, 0, 0, 0);
    while (stream.state == CONNECTING)
        poll();
    return stream.state == ESTABLISHED ? 0 : -1;
}

int vsock_accept(uint32_t port) {
    reset_stream_state(LISTENING);
    stream.listen_port = port;
    while (stream.state == LISTENING)
        poll();
    return stream.state == ESTABLISHED ? 0 : -1;
}

int vsock_send(const void* data, uint32_t length) {
    const uint8_t* bytes = data;
    while (length > 0) {
        if (stream.state != ESTABLISHED)
            return -1;
        /* §5.10.6.3: never more than the host's buf_alloc - (tx_cnt - fwd_cnt). */
        uint32_t in_flight = stream.tx_cnt - stream.peer_fwd_cnt;
        uint32_t credit = in_flight > stream.peer_buf_alloc ? 0 : stream.peer_buf_alloc - in_flight;
        uint32_t count = length < credit ? length : credit;
        count = count < TX_PAYLOAD ? count : TX_PAYLOAD;
        if (count == 0) {
            poll(); /* a CREDIT_UPDATE will come as the host reads */
            continue;
        }
        send_packet(VSOCK_OP_RW, 0, bytes, count);
        stream.tx_cnt += count;
        bytes += count;
        length -= count;
        poll();
    }
    return 0;
}

int64_t vsock_recv(void* data, uint32_t capacity) {
    uint8_t* bytes = data;
    for (;;) {
        uint32_t held = stream.rx_cnt - stream.fwd_cnt;
        if (held > 0) {
            uint32_t count = held < capacity ? held : capacity;
            for (uint32_t index = 0; index < count; ++index)
                bytes[index] = ring[(stream.fwd_cnt + index) % RING_SIZE];
            stream.fwd_cnt += count;
            /* Tell the host about the room before it runs out of credit. */
            if (stream.fwd_cnt - stream.advertised_fwd_cnt >= CREDIT_THRESHOLD)
                send_packet(VSOCK_OP_CREDIT_UPDATE, 0, 0, 0);
            return count;
        }
        if (stream.state != ESTABLISHED)
            return -1;
        if (stream.peer_done)
            return 0;
        poll();
    }
}

void vsock_close(void) {
    if (stream.state != ESTABLISHED)
        return;
    send_packet(VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_SEND | VSOCK_SHUTDOWN_RECEIVE, 0, 0);
    /* The host answers with a RST (Linux waits the same way). */
    while (stream.state == ESTABLISHED)
        poll();
    stream.state = CLOSED;
}
