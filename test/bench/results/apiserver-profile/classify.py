import re,sys,collections
txt=open(sys.argv[1]).read()
blocks=txt.split('-----------+-------------------------------------------------------')[1:]
tot=collections.Counter(); total=0
def val(s):
    s=s.strip()
    m=re.match(r'([\d.]+)(ms|s|us)',s)
    v=float(m.group(1)); return v/1000 if m.group(2)=='ms' else (v/1e6 if m.group(2)=='us' else v)
rules=[
 ('CR status patch (operator: ExtractionJob status)', lambda s: 'customresource.(*StatusREST)' in s or ('crdHandler' in s and 'PatchResource' in s)),
 ('CR create (harness: ExtractionJob create)', lambda s: 'crdHandler' in s and 'CreateResource' in s or 'customresource.(*REST).Create' in s ),
 ('Pod status patch (fake kubelet)', lambda s: 'pod/storage.(*StatusREST)' in s),
 ('Event create, told by its strategy (operator, events.k8s.io)', lambda s: 'registry/core/event' in s or ('CreateResource' in s and 'events' in s.lower() and 'pod' not in s.lower())),
 ('Pod and event creates, not told apart in the stacks (operator)', lambda s: 'CreateResource' in s or 'pod/storage.(*REST).Create' in s or 'registry.(*Store).Create' in s),
 ('Other patch (operator: Pod finalizer release; fake kubelet)', lambda s: 'patchResource' in s or 'PatchResource' in s),
 ('Delete', lambda s: 'DeleteResource' in s),
 ('Watch fan-out (cacher, etcd watch)', lambda s: 'cacher' in s or 'etcd3.(*watchChan)' in s or 'serveWatch' in s or 'WatchServer' in s),
 ('List/Get', lambda s: 'ListResource' in s or 'GetResource' in s),
 ('GC background', lambda s: 'gcBgMarkWorker' in s),
 ('Request filters only (authn, authz, APF, TLS)', lambda s: 'withAuthentication' in s or 'withAuthorization' in s or 'tls.' in s or 'priorityAndFairness' in s or 'net/http' in s),
]
ex=collections.defaultdict(list)
for b in blocks:
    lines=b.strip('\n').split('\n')
    if not lines or not lines[0].strip(): continue
    first=lines[0].split()
    v=val(first[0]); stack=' '.join([first[1]]+[l.strip() for l in lines[1:]])
    total+=v
    for name,f in rules:
        if f(stack): tot[name]+=v; break
    else: tot['other']+=v; ex['other'].append((v,first[1]))
for k,v in tot.most_common(): print(f"{v:7.2f} s {100*v/total:5.1f} %  {k}")
print(f"{total:7.2f} s total")
c=collections.Counter()
for v,f in ex['other']: c[f]+=v
print('other top:',c.most_common(8))
