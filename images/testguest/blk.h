/* The test guest's virtio-blk modes (virtio 1.2 §5.2), chosen on the
   command line with testguest.blk=rw|ro|bad|bench. */
#pragma once

#include <stdint.h>

#include "virtio.h"

/* §5.2.6 request types and status values. */
#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_T_FLUSH 4
#define BLK_T_GET_ID 8
#define BLK_S_OK 0
#define BLK_S_IOERR 1
#define BLK_S_UNSUPP 2
#define BLK_F_RO (1ull << 5)
#define BLK_F_FLUSH (1ull << 9)
#define SECTOR 512

struct blk_header {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};

/* The result of one request: the status byte and the used length. */
struct blk_result {
    uint32_t status;
    uint32_t used_length;
};

/* blk.c */
extern struct virtio_device blk_device;
extern uint8_t blk_data[]; /* 4 MiB, page aligned */
#define BLK_DATA_SIZE (4u << 20)
void blk_fail(const char* what, uint64_t value);
uint64_t blk_parse_option(const char* cmdline, const char* key, uint64_t fallback);
/* Posts the chain BUFFERS[0..COUNT), notifies and spins for its completion
   (or sleeps on the device interrupt with SLEEP, at CPL0). */
uint32_t blk_submit(const struct virtq_buffer* buffers, int count, int sleep);
struct blk_result blk_request(uint32_t type, uint64_t sector, void* data, uint32_t length);
uint64_t run_at_cpl3(uint64_t (*function)(void));
/* Finds and starts the virtio-blk device (after virtio_map_windows and
   allow_user_access): 0 and its CAPACITY in sectors, or negative. */
int blk_open(const char* cmdline, uint64_t* capacity);
void run_blk_mode(const char* cmdline);

/* blk_bad.c */
void blk_bad_descriptors(uint64_t capacity);

/* blk_bench.c */
void blk_bench(uint64_t capacity, const char* cmdline);
