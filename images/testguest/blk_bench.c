/* testguest.blk=bench: sequential reads of 1 MiB requests, BENCH_DEPTH in
   flight, entirely at CPL3 (posting, the QueueNotify doorbell the VMM
   catches with an ioeventfd, polling the used ring). bench/virtio/run times
   two runs of different sizes, so boot and set-up cancel out. */
#include "blk.h"
#include "testguest.h"

#define BENCH_REQUEST (1u << 20)
#define BENCH_DEPTH 4

static struct blk_header bench_headers[BENCH_DEPTH];
static volatile uint8_t bench_status[BENCH_DEPTH];
static int8_t bench_slot_of_head[VIRTQ_SIZE];
static uint64_t bench_capacity, bench_requests, bench_next_sector;

static void bench_post(int slot) {
    uint64_t sectors = BENCH_REQUEST / SECTOR;
    if (bench_next_sector + sectors > bench_capacity)
        bench_next_sector = 0;
    bench_headers[slot] = (struct blk_header){BLK_T_IN, 0, bench_next_sector};
    bench_next_sector += sectors;
    bench_status[slot] = 0xff;
    struct virtq_buffer buffers[3] = {
        {&bench_headers[slot], sizeof(struct blk_header), 0},
        {blk_data + (uint64_t)slot * BENCH_REQUEST, BENCH_REQUEST, 1},
        {(const void*)&bench_status[slot], 1, 1},
    };
    int head = virtq_post(&blk_device.queues[0], buffers, 3);
    if (head >= 0)
        bench_slot_of_head[head] = (int8_t)slot;
}

/* Returns the number of failed requests. */
static uint64_t user_bench(void) {
    struct virtq* queue = &blk_device.queues[0];
    uint64_t posted = 0, done = 0, errors = 0;
    for (int slot = 0; slot < BENCH_DEPTH && posted < bench_requests; ++slot, ++posted)
        bench_post(slot);
    virtio_notify(&blk_device, 0);
    while (done < bench_requests) {
        uint32_t length;
        int head = virtq_take(queue, &length);
        if (head < 0)
            continue;
        int slot = bench_slot_of_head[head];
        errors += bench_status[slot] != BLK_S_OK || length != BENCH_REQUEST + 1;
        ++done;
        if (posted < bench_requests) {
            bench_post(slot);
            ++posted;
            virtio_notify(&blk_device, 0);
        }
    }
    return errors;
}

void blk_bench(uint64_t capacity, uint64_t mebibytes) {
    if (capacity < BENCH_REQUEST / SECTOR)
        blk_fail("bench: disk smaller than one request", capacity);
    bench_capacity = capacity;
    bench_requests = mebibytes;
    uint64_t errors = run_at_cpl3(user_bench);
    if (errors)
        blk_fail("bench: failed requests", errors);
    print("ok virtio-blk bench mib=");
    print_dec(mebibytes);
    print(" request-kib=1024 depth=4 errors=0\n");
}
