/* testguest.blk=bad: malformed requests and rings, each with the exact
   outcome the VMM's virtio-blk gives (vmm/virtio/queue.cpp,
   vmm/devices/block/block_request.cpp), then proof that the device still
   serves good requests:

     chain faults (index out of range, loop, buffer outside RAM, bad
     indirect table, readable after writable) -> chain returned, length 0,
     status byte untouched;
     request faults (short header, sector past the end or overflowing,
     unknown type) -> status IOERR / UNSUPP, length 1;
     a head outside the table in the available ring -> skipped, never
     returned;
     the available index jumping by more than the queue size -> the ring is
     broken: DEVICE_NEEDS_RESET, config-change interrupt bit; after a reset
     the device works again. */
#include "blk.h"
#include "testguest.h"

#define OUTSIDE_RAM 0x4000000000ull /* 256 GiB: far above any test guest */

static struct blk_header bad_header;
static volatile uint8_t bad_status;
static uint8_t bad_data[512];

/* Prepares a one-sector read; D receives the three descriptor indices. */
static uint16_t prepare_read(uint64_t sector, uint16_t d[3]) {
    struct virtq* queue = &blk_device.queues[0];
    bad_header = (struct blk_header){BLK_T_IN, 0, sector};
    bad_status = 0xff;
    struct virtq_buffer buffers[3] = {{&bad_header, sizeof(bad_header), 0},
                                      {bad_data, sizeof(bad_data), 1},
                                      {(const void*)&bad_status, 1, 1}};
    int head = virtq_prepare(queue, buffers, 3);
    if (head < 0)
        blk_fail("bad: queue full", 0);
    d[0] = (uint16_t)head;
    d[1] = queue->link[d[0]];
    d[2] = queue->link[d[1]];
    return d[0];
}

/* Publishes HEAD, notifies and waits for it to come back. */
static uint32_t submit_prepared(uint16_t head) {
    struct virtq* queue = &blk_device.queues[0];
    virtq_publish(queue, head);
    virtio_notify(&blk_device, 0);
    uint32_t length = 0;
    int taken;
    while ((taken = virtq_take(queue, &length)) < 0) {
    }
    if (taken != head)
        blk_fail("bad: unexpected used id", (uint64_t)taken);
    return length;
}

static void expect(const char* name, uint32_t length, uint32_t want_length, uint8_t want_status) {
    if (length != want_length)
        blk_fail(name, length);
    if (bad_status != want_status)
        blk_fail(name, bad_status);
    print("ok virtio-blk bad ");
    print(name);
    print(" used-length=");
    print_dec(length);
    print(" status=");
    print_hex(bad_status);
    print("\n");
}

static void chain_faults(void) {
    struct virtq* queue = &blk_device.queues[0];
    uint16_t d[3];
    uint16_t head = prepare_read(0, d);
    queue->desc[d[0]].next = VIRTQ_SIZE + 3;
    expect("next-out-of-range", submit_prepared(head), 0, 0xff);

    head = prepare_read(0, d);
    queue->desc[d[1]].next = d[0];
    expect("descriptor-loop", submit_prepared(head), 0, 0xff);

    head = prepare_read(0, d);
    queue->desc[d[1]].addr = OUTSIDE_RAM;
    expect("address-outside-ram", submit_prepared(head), 0, 0xff);

    head = prepare_read(0, d);
    queue->desc[d[0]].flags = VIRTQ_DESC_F_INDIRECT;
    queue->desc[d[0]].len = 15; /* not a whole number of descriptors */
    expect("indirect-bad-length", submit_prepared(head), 0, 0xff);

    head = prepare_read(0, d);
    queue->desc[d[2]].flags = 0; /* status readable after writable data */
    expect("readable-after-writable", submit_prepared(head), 0, 0xff);
}

static void request_faults(uint64_t capacity) {
    struct virtq* queue = &blk_device.queues[0];
    uint16_t d[3];
    uint16_t head = prepare_read(0, d);
    queue->desc[d[0]].len = 8; /* §5.2.6: the header is 16 bytes */
    expect("short-header", submit_prepared(head), 1, BLK_S_IOERR);

    head = prepare_read(capacity, d);
    expect("sector-past-end", submit_prepared(head), 1, BLK_S_IOERR);

    head = prepare_read(~0ull, d);
    expect("sector-overflow", submit_prepared(head), 1, BLK_S_IOERR);

    head = prepare_read(0, d);
    bad_header.type = 99;
    expect("unknown-type", submit_prepared(head), 1, BLK_S_UNSUPP);
}

static void good_read(const char* name) {
    uint16_t d[3];
    uint16_t head = prepare_read(1, d);
    expect(name, submit_prepared(head), sizeof(bad_data) + 1, BLK_S_OK);
}

static void head_out_of_range(void) {
    struct virtq* queue = &blk_device.queues[0];
    uint16_t before = queue->used.idx;
    virtq_publish(queue, 200); /* names no descriptor: nothing to return */
    good_read("head-out-of-range-then-good");
    if ((uint16_t)(queue->used.idx - before) != 1)
        blk_fail("bad: skipped head was returned", queue->used.idx);
}

static void broken_ring(void) {
    struct virtq* queue = &blk_device.queues[0];
    *(volatile uint16_t*)&queue->avail.idx = (uint16_t)(queue->avail.idx + VIRTQ_SIZE + 1);
    virtio_notify(&blk_device, 0);
    uint32_t status = 0;
    for (uint64_t tries = 0; tries < 1000000; ++tries) {
        status = virtio_status(&blk_device);
        if (status & VIRTIO_STATUS_NEEDS_RESET)
            break;
    }
    if (!(status & VIRTIO_STATUS_NEEDS_RESET))
        blk_fail("bad: no DEVICE_NEEDS_RESET", status);
    uint32_t bits = virtio_read32(&blk_device, VIRTIO_MMIO_INTERRUPT_STATUS);
    if (!(bits & VIRTIO_INTERRUPT_CONFIG))
        blk_fail("bad: no config-change interrupt", bits);
    print("ok virtio-blk bad avail-index-jump needs-reset=1 interrupt-status=");
    print_hex(bits);
    print("\n");
    int started = virtio_start(&blk_device, BLK_F_RO | BLK_F_FLUSH, 1);
    if (started != 0)
        blk_fail("bad: restart", (uint64_t)(int64_t)started);
    good_read("after-reset-good");
}

void blk_bad_descriptors(uint64_t capacity) {
    chain_faults();
    request_faults(capacity);
    good_read("good-after-faults");
    head_out_of_range();
    broken_ring();
}
