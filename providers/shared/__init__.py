"""Small helpers every room uses, at the bottom of the house (providers imports none of the other
apps, so anything here can be imported from anywhere): the phone normalizer, text folding, the CSV
formula guard and the one error type a service raises when it refuses."""
