/* testguest.blk=bench: reads of testguest.blk.request-kib (default 1024)
   each, split into buffers of testguest.blk.segment-kib (default: the whole
   request; Linux hands over 4 KiB pages), at sequential sectors or, with
   testguest.blk.random=1, at random request-aligned ones; BENCH_DEPTH in
   flight, entirely at CPL3 (posting, the QueueNotify doorbell the VMM
   catches with an ioeventfd, polling the used ring). testguest.blk.mib
   MiB in all. bench/virtio/run times two runs of different sizes, so boot
   and set-up cancel out. */
#include "blk.h"
#include "testguest.h"

#define BENCH_DEPTH 4
/* Header and status besides the data, each slot within its share of the
   queue. */
#define BENCH_MAX_SEGMENTS (VIRTQ_SIZE / BENCH_DEPTH - 2)

static struct blk_header bench_headers[BENCH_DEPTH];
static volatile uint8_t bench_status[BENCH_DEPTH];
static int8_t bench_slot_of_head[VIRTQ_SIZE];
static uint64_t bench_capacity, bench_requests, bench_next_sector, bench_random_state;
static uint32_t bench_request, bench_segment;
static int bench_random;

/* xorshift64: the same sequence every run, no two adjacent requests alike. */
static uint64_t bench_next_random(void) {
    bench_random_state ^= bench_random_state << 13;
    bench_random_state ^= bench_random_state >> 7;
    bench_random_state ^= bench_random_state << 17;
    return bench_random_state;
}

static uint64_t bench_sector(void) {
    uint64_t sectors = bench_request / SECTOR;
    if (bench_random)
        return bench_next_random() % (bench_capacity / sectors) * sectors;
    if (bench_next_sector + sectors > bench_capacity)
        bench_next_sector = 0;
    uint64_t sector = bench_next_sector;
    bench_next_sector += sectors;
    return sector;
}

static void bench_post(int slot) {
    bench_headers[slot] = (struct blk_header){BLK_T_IN, 0, bench_sector()};
    bench_status[slot] = 0xff;
    struct virtq_buffer buffers[BENCH_MAX_SEGMENTS + 2];
    int count = 0;
    buffers[count++] = (struct virtq_buffer){&bench_headers[slot], sizeof(struct blk_header), 0};
    uint8_t* data = blk_data + (uint64_t)slot * bench_request;
    for (uint32_t offset = 0; offset < bench_request; offset += bench_segment)
        buffers[count++] = (struct virtq_buffer){data + offset, bench_segment, 1};
    buffers[count++] = (struct virtq_buffer){(const void*)&bench_status[slot], 1, 1};
    int head = virtq_post(&blk_device.queues[0], buffers, count);
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
        errors += bench_status[slot] != BLK_S_OK || length != bench_request + 1;
        ++done;
        if (posted < bench_requests) {
            bench_post(slot);
            ++posted;
            virtio_notify(&blk_device, 0);
        }
    }
    return errors;
}

void blk_bench(uint64_t capacity, const char* cmdline) {
    uint64_t mebibytes = blk_parse_option(cmdline, "testguest.blk.mib=", 64);
    uint64_t request_kib = blk_parse_option(cmdline, "testguest.blk.request-kib=", 1024);
    uint64_t segment_kib = blk_parse_option(cmdline, "testguest.blk.segment-kib=", request_kib);
    bench_random = (int)blk_parse_option(cmdline, "testguest.blk.random=", 0);
    if (request_kib == 0 || segment_kib == 0 || request_kib % segment_kib != 0 ||
        request_kib / segment_kib > BENCH_MAX_SEGMENTS ||
        request_kib * 1024 * BENCH_DEPTH > BLK_DATA_SIZE || (mebibytes * 1024) % request_kib != 0)
        blk_fail("bench: request-kib must be a multiple of segment-kib, at most 14 segments, "
                 "fit the data area and divide mib",
                 request_kib);
    bench_request = (uint32_t)(request_kib * 1024);
    bench_segment = (uint32_t)(segment_kib * 1024);
    if (capacity < bench_request / SECTOR)
        blk_fail("bench: disk smaller than one request", capacity);
    bench_capacity = capacity;
    bench_requests = mebibytes * 1024 / request_kib;
    bench_random_state = 0x9e3779b97f4a7c15ull;
    uint64_t errors = run_at_cpl3(user_bench);
    if (errors)
        blk_fail("bench: failed requests", errors);
    print("ok virtio-blk bench mib=");
    print_dec(mebibytes);
    print(" request-kib=");
    print_dec(request_kib);
    print(" segment-kib=");
    print_dec(segment_kib);
    print(bench_random ? " random" : " sequential");
    print(" depth=4 errors=0\n");
}
