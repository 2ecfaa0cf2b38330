/* The context switch for aarch64, AAPCS64 (arch/ctx.h).
 *
 * A suspended context is its stack pointer; at it, the frame
 * conc__ctx_switch stored (176 bytes, 16-byte aligned):
 *
 *   sp + 0    x19 x20    sp + 16   x21 x22    sp + 32   x23 x24
 *   sp + 48   x25 x26    sp + 64   x27 x28    sp + 80   x29 (fp) x30 (lr:
 *                                                       where to resume)
 *   sp + 96   d8 d9      sp + 112  d10 d11    sp + 128  d12 d13
 *   sp + 144  d14 d15    sp + 160  FPCR, 8 spare
 *
 * conc__ctx_make writes the same frame for a new context: x19 = entry,
 * x20 = arg, x29 = 0 (a frame-pointer walk stops there), x30 =
 * conc__ctx_start. FPCR is written only when it differs: a write to it can
 * cost dozens of cycles, a read almost nothing. */
#if defined(__aarch64__) && !defined(CONC_CTX_UCONTEXT)

    .text

/* void *conc__ctx_switch(conc__ctx *from, conc__ctx *to, void *value)
 * x0 = from, x1 = to, x2 = value; returns in x0 the value carried by the
 * switch that resumes from. */
    .globl conc__ctx_switch
    .hidden conc__ctx_switch
    .type conc__ctx_switch, %function
    .p2align 4
conc__ctx_switch:
    .cfi_startproc
    sub sp, sp, #176
    .cfi_adjust_cfa_offset 176
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    mrs x10, fpcr
    str x10, [sp, #160]

    mov x9, sp
    str x9, [x0]
    ldr x9, [x1]
    mov sp, x9

    ldr x9, [sp, #160]
    cmp x9, x10
    b.eq 1f
    msr fpcr, x9
1:
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    add sp, sp, #176
    .cfi_adjust_cfa_offset -176
    mov x0, x2
    /* Not `ret`: the return stack predicts the caller of this switch, and
     * the place resumed is always another. */
    br x30
    .cfi_endproc
    .size conc__ctx_switch, . - conc__ctx_switch

/* void conc__ctx_make(conc__ctx *ctx, void *lo, size_t size,
 *                     conc__ctx_entry entry, void *arg)
 * x0 = ctx, x1 = lo, x2 = size, x3 = entry, x4 = arg. */
    .globl conc__ctx_make
    .hidden conc__ctx_make
    .type conc__ctx_make, %function
    .p2align 4
conc__ctx_make:
    .cfi_startproc
    add x9, x1, x2
    and x9, x9, #~15
    /* 16 bytes on top (a null frame record, where an unwinder stops), then
     * the 176-byte frame. */
    stp xzr, xzr, [x9, #-16]
    sub x9, x9, #192
    stp x3, x4, [x9, #0]
    stp xzr, xzr, [x9, #16]
    stp xzr, xzr, [x9, #32]
    stp xzr, xzr, [x9, #48]
    stp xzr, xzr, [x9, #64]
    adr x10, conc__ctx_start
    stp xzr, x10, [x9, #80]
    stp xzr, xzr, [x9, #96]
    stp xzr, xzr, [x9, #112]
    stp xzr, xzr, [x9, #128]
    stp xzr, xzr, [x9, #144]
    mrs x10, fpcr
    stp x10, xzr, [x9, #160]
    str x9, [x0]
    ret
    .cfi_endproc
    .size conc__ctx_make, . - conc__ctx_make

/* Where a new context begins: x19 = entry, x20 = arg, x0 = the value the
 * first switch carried. entry(arg, value) must not return. */
    .type conc__ctx_start, %function
    .p2align 4
conc__ctx_start:
    .cfi_startproc
    .cfi_undefined x30
    mov x1, x0
    mov x0, x20
    blr x19
    brk #1
    .cfi_endproc
    .size conc__ctx_start, . - conc__ctx_start

#endif

    .section .note.GNU-stack, "", %progbits
