"""link/stubs"""
