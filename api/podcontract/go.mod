module github.com/pybase/extraction-operator/api/podcontract

go 1.26.0
