"""The fiscal medical electronic invoice plugin (财政医疗电子票据, Bosssoft platform).

HIS hands the engine an invoice (outpatient, inpatient, registration, check-up), a
red-flush or a payment voucher; the engine validates it, signs the platform envelope,
delivers it store-and-forward, and never issues two invoices for one business number.
"""
