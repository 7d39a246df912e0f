/* Freestanding basics for the kbu test kernel: types, port I/O, CPUID, printf. */
#ifndef GUEST_H
#define GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "param.h"

typedef unsigned int u_int;
typedef unsigned char u_char;
typedef unsigned short u_short;
typedef uint64_t vm_paddr_t;
typedef uint64_t vm_offset_t;

#define KERNEL_FN  __attribute__((noinline, used))
#define __printflike(f, a) __attribute__((format(printf, f, a)))
#define __dead2    __attribute__((noreturn))
#define nitems(x)  (sizeof(x) / sizeof((x)[0]))

/* Physical address below 1 GiB -> its address in the KERNBASE map. */
#define PHYS_TO_KVA(pa) ((void *)((uintptr_t)KERNBASE + (uintptr_t)(pa)))
#define KERNBASE_MAP_SIZE 0x40000000ULL

static inline void outb(u_short port, u_char v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline u_char inb(u_short port) { u_char v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline void do_cpuid(u_int ax, u_int *p)
{
	__asm__ volatile("cpuid" : "=a"(p[0]), "=b"(p[1]), "=c"(p[2]), "=d"(p[3]) : "0"(ax), "2"(0));
}
static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}
static inline void cpu_pause(void) { __asm__ volatile("pause"); }
static inline void disable_intr(void) { __asm__ volatile("cli" ::: "memory"); }

/* CPUID.1 bits (FreeBSD's specialreg.h names). */
#define CPUID_TSC      0x00000010
#define CPUID_APIC     0x00000200
#define CPUID2_X2APIC  0x00200000
#define CPUID2_HV      0x80000000

/* vm_guest values (FreeBSD's enum VM_GUEST). */
#define VM_GUEST_NO    0
#define VM_GUEST_VM    1
#define VM_GUEST_KVM   4

/* Scenarios chosen with kbu.scenario=NAME. */
enum scenario { SC_OK, SC_TSC, SC_TIMECOUNTER, SC_X2APIC, SC_MPTABLE, SC_MPCORRUPT, SC_PAGEFAULT };
extern enum scenario boot_scenario;
extern const char *boot_scenario_name;

/* libkern-like helpers (subr_prf.c). */
int printf(const char *fmt, ...) __printflike(1, 2);
/* The harness's lines: serial console only, never the message buffer. */
int harness_printf(const char *fmt, ...) __printflike(1, 2);
int vprintf(const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) __printflike(3, 4);
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
size_t strnlen(const char *s, size_t max);
int strncmp(const char *a, const char *b, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);

/* Console and message buffer. */
void cninit(void);
void msgbuf_init(void);
void cnputc(int c);

/* Panic path (kern_panic.c). */
void panic(const char *fmt, ...) __dead2 __printflike(1, 2);
void vpanic(const char *fmt, va_list ap) __dead2;
/* As in a FreeBSD kernel built without kassert_panic: KASSERT calls panic. */
#define KASSERT(exp, msg) do {                       \
	if (__builtin_expect(!(exp), 0))             \
		panic msg;                           \
} while (0)

/* locore.S */
void cpu_halt_forever(void) __dead2;
void cpu_idle(void) __dead2;

/* Machine state (FreeBSD names). */
extern u_int cpu_high, cpu_feature, cpu_feature2, cpu_id, hv_high;
extern int vm_guest;
extern char cpu_vendor[13], hv_vendor[13];
extern uint64_t tsc_freq;
extern int x2apic_mode;
extern u_int lapic_version;
extern int mp_ncpus;

void identify_cpu(void);
void probe_tsc_freq_early(void);
void tsc_calibrate_i8254(void);
void lapic_init(vm_paddr_t addr);
void lapic_x2apic_enable(void);
void lapic_calibrate_timer(void);
int lapic_timer_start(void);
extern volatile uint64_t lapic_ticks;
#define APIC_TIMER_INT 0xef     /* FreeBSD: APIC_IO_INTS + APIC_NUM_IOINTS */
#define APIC_SPURIOUS_INT 0xff
uint32_t lapic_read_timer_ccr(void);
uint32_t lapic_read32(u_int reg);
void lapic_write32(u_int reg, uint32_t v);
void idt_init(void);
void i8254_init(void);
void i8254_delay(u_int usec);

#endif
